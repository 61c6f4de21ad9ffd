"""``[revocation]``: where CRLs are cached, which issuers are trusted, how fresh is fresh enough.

Every key is documented in ``docs/revocation.md``. Durations are numbers of seconds, as elsewhere
in the config; relative paths are resolved against the config file's directory.

    [revocation]
    cache_dir = "var/crl"              # fetched CRLs (required)
    issuers_dir = "config/issuers"     # issuer CA certificates, PEM or DER (required)
    refresh_interval = 3600            # seconds between CRL refreshes
    retry_interval = 300               # first retry after a failed fetch; doubles up to refresh
    max_age = 86400                    # a CRL not refreshed for this long is stale
    stale = "fail-closed"              # or "fail-open": see docs/revocation.md
    timeout = 10                       # seconds per HTTP request
    max_crl_bytes = 33554432           # a larger CRL download is refused
    ocsp_max_age = 3600                # how long an OCSP answer is used

    [[revocation.ocsp]]                # OCSP before the CRL for certificates of this issuer
    issuer = "buypass-class3-ca-g2.pem"   # a file in issuers_dir
    url = "http://ocsp.buypass.no/..."    # optional: else the certificate's own AIA address
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

from gateway.errors import ConfigurationError

__all__ = ["STALE_POLICIES", "OcspResponder", "RevocationConfig", "StalePolicy"]

StalePolicy = Literal["fail-closed", "fail-open"]
STALE_POLICIES: Final[tuple[StalePolicy, ...]] = ("fail-closed", "fail-open")
_KEYS: Final = frozenset(
    {
        "enabled",
        "cache_dir",
        "issuers_dir",
        "refresh_interval",
        "retry_interval",
        "max_age",
        "stale",
        "timeout",
        "max_crl_bytes",
        "ocsp_max_age",
        "ocsp",
    }
)


@dataclass(frozen=True, slots=True)
class OcspResponder:
    """Ask OCSP first for certificates issued by the CA in ``issuers_dir/issuer``."""

    issuer: str
    """The file name, in ``issuers_dir``, of the issuing CA's certificate."""
    url: str | None = None
    """The responder; ``None``: the address in the certificate's AuthorityInfoAccess."""


@dataclass(frozen=True, slots=True)
class RevocationConfig:
    """How partner certificates are checked for revocation (``gateway.security.revocation``)."""

    cache_dir: Path
    issuers_dir: Path
    refresh_interval: timedelta = timedelta(hours=1)
    retry_interval: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(hours=24)
    stale: StalePolicy = "fail-closed"
    timeout: float = 10.0
    max_crl_bytes: int = 32 * 1024 * 1024
    ocsp_max_age: timedelta = timedelta(hours=1)
    ocsp: tuple[OcspResponder, ...] = ()

    @property
    def fail_closed(self) -> bool:
        """True if a certificate whose status cannot be established is refused."""
        return self.stale == "fail-closed"

    def responder_for(self, issuer_file: str) -> OcspResponder | None:
        """The OCSP responder configured for the issuer in ``issuer_file``, if any."""
        for responder in self.ocsp:
            if responder.issuer == issuer_file:
                return responder
        return None

    @classmethod
    def from_toml(
        cls, document: Mapping[str, object], *, base: Path, source: str = "config"
    ) -> RevocationConfig | None:
        """The ``[revocation]`` table of a parsed TOML ``document``; ``None`` without one (or
        with ``enabled = false``): revocation is then not checked. ``ConfigurationError``
        names the file (``source``) and the key at fault."""
        table = document.get("revocation")
        if table is None:
            return None
        return _Reader(source, base).config(table)


class _Reader:
    def __init__(self, source: str, base: Path) -> None:
        self.source = source
        self.base = base

    def fail(self, key: str, expected: str, value: object) -> ConfigurationError:
        return ConfigurationError(f"{self.source}: {key} must be {expected}, got {value!r}")

    def config(self, table: object) -> RevocationConfig | None:
        if not isinstance(table, Mapping):
            raise self.fail("revocation", "a table", table)
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise ConfigurationError(
                f"{self.source}: unknown key revocation.{unknown[0]} "
                f"(known: {', '.join(sorted(_KEYS))})"
            )
        enabled = table.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.fail("revocation.enabled", "true or false", enabled)
        if not enabled:
            return None
        defaults = RevocationConfig(Path(), Path())
        stale = table.get("stale", defaults.stale)
        if stale not in STALE_POLICIES:
            raise self.fail("revocation.stale", '"fail-closed" or "fail-open"', stale)
        return RevocationConfig(
            cache_dir=self.path(table, "cache_dir"),
            issuers_dir=self.path(table, "issuers_dir"),
            refresh_interval=self.seconds(table, "refresh_interval", defaults.refresh_interval),
            retry_interval=self.seconds(table, "retry_interval", defaults.retry_interval),
            max_age=self.seconds(table, "max_age", defaults.max_age),
            stale="fail-open" if stale == "fail-open" else "fail-closed",
            timeout=self.seconds(
                table, "timeout", timedelta(seconds=defaults.timeout)
            ).total_seconds(),
            max_crl_bytes=self.positive_int(table, "max_crl_bytes", defaults.max_crl_bytes),
            ocsp_max_age=self.seconds(table, "ocsp_max_age", defaults.ocsp_max_age),
            ocsp=self.responders(table.get("ocsp", [])),
        )

    def path(self, table: Mapping[str, object], name: str) -> Path:
        value = table.get(name)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"revocation.{name}", "a path (a non-empty string)", value)
        return (self.base / value).resolve()

    def seconds(self, table: Mapping[str, object], name: str, default: timedelta) -> timedelta:
        value = table.get(name, default.total_seconds())
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(f"revocation.{name}", "a positive number of seconds", value)
        return timedelta(seconds=value)

    def positive_int(self, table: Mapping[str, object], name: str, default: int) -> int:
        value = table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(f"revocation.{name}", "a positive integer", value)
        return value

    def responders(self, value: object) -> tuple[OcspResponder, ...]:
        if not isinstance(value, list):
            raise self.fail("revocation.ocsp", "an array of tables ([[revocation.ocsp]])", value)
        result: list[OcspResponder] = []
        for index, entry in enumerate(value):
            key = f"revocation.ocsp[{index}]"
            if not isinstance(entry, Mapping):
                raise self.fail(key, "a table with issuer and url", entry)
            unknown = sorted(set(entry) - {"issuer", "url"})
            if unknown:
                raise ConfigurationError(f"{self.source}: unknown key {key}.{unknown[0]}")
            issuer = entry.get("issuer")
            if not isinstance(issuer, str) or not issuer.strip() or "/" in issuer:
                raise self.fail(
                    f"{key}.issuer", "the file name of a certificate in issuers_dir", issuer
                )
            if any(r.issuer == issuer for r in result):
                raise ConfigurationError(f"{self.source}: {key}.issuer {issuer!r} is listed twice")
            url = entry.get("url")
            if url is not None and not _is_http_url(url):
                raise self.fail(f"{key}.url", "an http:// or https:// URL", url)
            result.append(OcspResponder(issuer, url if isinstance(url, str) else None))
        return tuple(result)


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
