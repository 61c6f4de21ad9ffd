"""Reading the configuration file: one typed reader that every part's settings use.

A ``Table`` is one TOML table with its key path (``outbox.smtp``, ``imap.mailboxes[0]``), the
file it came from and the directory its relative paths are resolved against. Each reader checks
one key and raises ``ConfigurationError`` naming the file and the key's full path::

    gateway.toml: outbox.smtp.port must be an integer from 1 to 65535, got '587'

The core settings (``gateway.config``) and each adapter's own (``MailboxConfig`` in ``inbox/``,
``SmtpConfig`` in ``outbox/``, ``PayoutConfig`` in ``payout/``) are read this one way.
Passwords are never in the file: ``read_secret`` reads them from a file or an environment
variable, each time they are needed (so they can be rotated). Every command names the file with
``--config`` (``add_config_option``), ``config/local.toml`` unless given.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import ConfigurationError

C = TypeVar("C", bound=str)

_REQUIRED: Any = object()

#: The config file a command reads when ``--config`` is not given.
DEFAULT_CONFIG = Path("config/local.toml")


def add_config_option(
    parser: argparse.ArgumentParser, what: str = "the gateway's config file"
) -> None:
    """``--config FILE``, saying what the file is for and its default."""
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"{what} (default: {DEFAULT_CONFIG})",
    )


class Table:
    """One table of the configuration file, read key by key with types."""

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        base: Path,
        where: str = "",
        source: str | None = None,
    ) -> None:
        self.data = data
        self.base = base
        self.where = where
        self.source = source

    # --- names and errors ------------------------------------------------------------------------

    def key(self, name: str) -> str:
        """The full path of ``name`` in the file (``outbox.smtp.port``)."""
        return f"{self.where}.{name}" if self.where else name

    def error(self, text: str) -> ConfigurationError:
        """A ``ConfigurationError`` with the file's name in front."""
        return ConfigurationError(f"{self.source}: {text}" if self.source else text)

    def fail(self, name: str, expected: str) -> ConfigurationError:
        """``<key> must be <expected>, got <the value>``."""
        return self.error(f"{self.key(name)} must be {expected}, got {self.data.get(name)!r}")

    # --- the table as a whole --------------------------------------------------------------------

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> object:
        """The value as TOML gave it, or None."""
        return self.data.get(name)

    def only(self, known: Iterable[str]) -> None:
        """Refuse keys this table does not know (a typo must not pass silently)."""
        unknown = sorted(set(self.data) - set(known))
        if unknown:
            names = ", ".join(self.key(name) for name in unknown)
            raise self.error(f"unknown key(s) {names} (known: {', '.join(sorted(known))})")

    def no_password(self, *, instead: str) -> None:
        """A password written into the config file is refused: say where it belongs."""
        if "password" in self.data:
            raise self.error(
                f"{self.key('password')}: the password must not be in the config; {instead}"
            )

    def table(self, name: str) -> Table:
        """The sub-table ``name`` (empty when absent)."""
        value = self.data.get(name, {})
        if not isinstance(value, Mapping):
            raise self.fail(name, "a table")
        return Table(value, base=self.base, where=self.key(name), source=self.source)

    def tables(self, name: str) -> list[Table]:
        """The array of tables ``name`` (``[[name]]``; empty when absent)."""
        value = self.data.get(name, [])
        if not isinstance(value, list):
            raise self.error(f"{self.key(name)} must be an array of tables ([[{self.key(name)}]])")
        found: list[Table] = []
        for index, item in enumerate(value):
            where = f"{self.key(name)}[{index}]"
            if not isinstance(item, Mapping):
                raise self.error(f"{where} must be a table, got {item!r}")
            found.append(Table(item, base=self.base, where=where, source=self.source))
        return found

    def named(self, label: str) -> Table:
        """The same table, its errors naming it ``<where>[<label>]`` (``[0]['claims']``)."""
        return Table(self.data, base=self.base, where=f"{self.where}[{label}]", source=self.source)

    # --- one key ---------------------------------------------------------------------------------

    def _value(self, name: str, default: object) -> object:
        if name in self.data:
            return self.data[name]
        if default is _REQUIRED:
            raise self.error(f"missing required key '{self.key(name)}'")
        return default

    def string(self, name: str, default: str = _REQUIRED) -> str:
        """A non-empty string (surrounding blanks removed)."""
        value = self._value(name, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "a non-empty string")
        return value.strip()

    def opt_string(self, name: str) -> str | None:
        """A non-empty string, or None when the key is absent."""
        return self.string(name) if name in self.data else None

    def digits(self, name: str, default: str = _REQUIRED) -> str:
        """A string of digits (a TOML integer is taken as its digits)."""
        value = self._value(name, default)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if not isinstance(value, str) or not value.isdigit():
            raise self.fail(name, "a string of digits")
        return value

    def opt_digits(self, name: str) -> str | None:
        """A string of digits, or None when the key is absent."""
        return self.digits(name) if name in self.data else None

    def choice(self, name: str, allowed: Sequence[C], default: C) -> C:
        """One of ``allowed``."""
        value = self._value(name, default)
        for option in allowed:
            if value == option:
                return option
        raise self.fail(name, "one of " + ", ".join(repr(a) for a in allowed))

    def boolean(self, name: str, default: bool) -> bool:
        """``true`` or ``false``."""
        value = self._value(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, "true or false")
        return value

    def integer(
        self,
        name: str,
        default: int,
        *,
        low: int | None = None,
        high: int | None = None,
        expected: str | None = None,
    ) -> int:
        """A whole number in ``[low, high]`` (``low=1`` alone reads as "a positive integer")."""
        value = self._value(name, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise self.fail(name, expected or _range("an integer", low, high))
        return value

    def number(
        self,
        name: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        positive: bool = False,
        unit: str = "",
    ) -> float:
        """A number (integer or float): above 0 with ``positive``, else in ``[low, high]``."""
        value = self._value(name, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (positive and value <= 0)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            what = "a positive number" if positive else _range("a number", low, high)
            raise self.fail(name, f"{what} of {unit}" if unit else what)
        return float(value)

    def path(self, name: str, default: str = _REQUIRED) -> Path:
        """A path; a relative one is resolved against the config file's directory."""
        return (self.base / self.string(name, default)).resolve()

    def opt_path(self, name: str) -> Path | None:
        """A path, or None when the key is absent."""
        return self.path(name) if name in self.data else None

    def existing_file(self, name: str) -> Path | None:
        """A path that must name an existing file, or None when the key is absent."""
        path = self.opt_path(name)
        if path is not None and not path.is_file():
            raise self.error(f"{self.key(name)}: no such file {path}")
        return path

    def strings(self, name: str, default: Sequence[str] = ()) -> list[str]:
        """A list of strings."""
        value = self._value(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "a list of strings")
        return list(value)


def _range(what: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{what} from {low} to {high}"
    if low == 1 and what == "an integer":
        return "a positive integer"
    if low is not None:
        return f"{what} of at least {low}"
    if high is not None:
        return f"{what} of at most {high}"
    return what


def load_toml(path: Path) -> Table:
    """The whole file ``path`` as a ``Table`` (relative paths against its directory)."""
    import tomllib

    path = path.resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from exc
    return Table(data, base=path.parent, source=str(path))


def read_secret(file: Path | None, env: str | None, *, what: str) -> str:
    """The secret kept in ``file`` (its last line break removed) or in the environment
    variable ``env``; ``what`` names it in errors (which never contain the secret)."""
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"{what}: cannot read password_file {file}: {exc.strerror or exc}"
            ) from exc
        secret = text.rstrip("\r\n")
        where = f"password_file {file}"
    else:
        secret = os.environ.get(env or "", "")
        where = f"environment variable {env}"
    if not secret:
        raise ConfigurationError(f"{what}: {where} is empty or unset")
    return secret
