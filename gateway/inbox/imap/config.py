"""``[[imap.mailboxes]]``: the mailboxes claims are taken from, one table each.

Read with ``gateway.settings.Table``; every error names the mailbox (``imap.mailboxes[0]
['claims'].port``). The password is never in the config: it is read from ``password_file`` or
the environment variable ``password_env`` at load (so a missing one stops the start) and again
at every login (so it can be rotated).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.errors import ConfigurationError
from gateway.settings import Table, read_secret

#: Most messages one command may touch (aioimaplib's reply-size bug, see ``poller``).
MAX_BATCH = 200

Security = Literal["tls", "starttls", "none"]
After = Literal["move", "expunge"]

SECURITY: tuple[Security, ...] = ("tls", "starttls", "none")
_AFTER: tuple[After, ...] = ("move", "expunge")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    """One mailbox to take claims from. The password is never part of the config itself."""

    name: str
    host: str
    port: int
    security: Security
    user: str
    password_file: Path | None
    password_env: str | None
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    after: After = "move"
    poll_interval: float = 60.0
    idle: bool = True
    idle_timeout: float = 300.0
    batch_size: int = 100
    connect_timeout: float = 30.0
    command_timeout: float = 120.0
    ca_file: Path | None = None

    @property
    def source(self) -> str:
        """The intake ``source`` of mails from this mailbox."""
        return f"imap:{self.name}"

    def source_ref(self, uidvalidity: int, uid: int) -> str:
        """The intake ``source_ref`` of one mail."""
        return f"imap:{self.name}:{uidvalidity}:{uid}"

    def password(self) -> str:
        """Read the password from its file or environment variable (each time: rotatable)."""
        return read_secret(
            self.password_file, self.password_env, what=f"imap mailbox {self.name!r}"
        )

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], base: Path, *, where: str = "imap.mailboxes"
    ) -> MailboxConfig:
        """Validate one mailbox table; relative paths are resolved against ``base``."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{where} must be a table, got {data!r}")
        return cls.from_table(Table(data, base=base, where=where))

    @classmethod
    def from_table(cls, table: Table) -> MailboxConfig:
        """Validate one mailbox table; raise ``ConfigurationError`` naming the key.

        Exactly one of ``password_file`` and ``password_env`` must be given.
        """
        name = table.raw("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise table.fail(
                "name",
                "1-64 letters, digits, '_', '.' or '-' (it is part of every source_ref)",
            )
        t = table.named(repr(name))
        t.no_password(
            instead="put it in a file (password_file) or an environment variable (password_env)"
        )
        t.only(_KNOWN_KEYS)
        security = t.choice("security", SECURITY, "tls")
        password_file = t.opt_path("password_file")
        password_env = t.opt_string("password_env")
        if (password_file is None) == (password_env is None):
            raise t.error(f"{t.where}: give exactly one of password_file and password_env")
        config = cls(
            name=name,
            host=t.string("host"),
            port=t.integer("port", 993 if security == "tls" else 143, low=1, high=65535),
            security=security,
            user=t.string("user"),
            password_file=password_file,
            password_env=password_env,
            folder=_folder(t, "folder", "INBOX"),
            processed_folder=_folder(t, "processed_folder", "Processed"),
            after=t.choice("after", _AFTER, "move"),
            poll_interval=_seconds(t, "poll_interval", 60.0),
            idle=t.boolean("idle", True),
            idle_timeout=_seconds(t, "idle_timeout", 300.0),
            batch_size=t.integer("batch_size", 100, low=1, high=MAX_BATCH),
            connect_timeout=_seconds(t, "connect_timeout", 30.0),
            command_timeout=_seconds(t, "command_timeout", 120.0),
            ca_file=t.existing_file("ca_file"),
        )
        if config.after == "move" and config.processed_folder == config.folder:
            raise t.error(f"{t.key('processed_folder')} must differ from folder")
        # Fail at load, not at the first connection, when the secret is missing.
        try:
            config.password()
        except ConfigurationError as exc:
            key = "password_file" if password_file is not None else "password_env"
            raise t.error(f"{t.key(key)}: {exc}") from exc
        return config

    @property
    def plaintext_to_remote_host(self) -> bool:
        """The password would cross the network unencrypted (``security = "none"``)."""
        return self.security == "none" and not _is_loopback(self.host)


_KNOWN_KEYS = frozenset(f.name for f in dataclasses.fields(MailboxConfig))


def mailboxes_from(table: Table) -> tuple[MailboxConfig, ...]:
    """The ``[[mailboxes]]`` of the ``[imap]`` table; names must be unique."""
    configs = tuple(MailboxConfig.from_table(item) for item in table.tables("mailboxes"))
    names = [c.name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise table.error(
            f"{table.key('mailboxes')}: mailbox name(s) used twice: {', '.join(duplicates)}"
        )
    return configs


def _folder(table: Table, name: str, default: str) -> str:
    value = table.raw(name) if name in table else default
    # Non-ASCII folder names need IMAP's modified UTF-7; not supported (yet).
    if (
        not isinstance(value, str)
        or not value
        or not value.isascii()
        or any(c in value for c in '\r\n"\\')
    ):
        raise table.fail(name, "an ASCII folder name without quotes or backslashes")
    return value


def _seconds(table: Table, name: str, default: float) -> float:
    return table.number(name, default, positive=True, unit="seconds")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
