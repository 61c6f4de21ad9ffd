"""CRLs: where a certificate's are published, which are acceptable, and the local cache of them.

A fetched CRL is accepted only if (``accept_crl``): it parses (DER, or PEM), a trusted issuer's
key verifies its signature, it is a complete CRL for end-entity certificates (no delta CRL, no
indirect CRL, not one of CA certificates only), its ``thisUpdate`` is not in the future, and it
is not older than the one already cached for the same URL.

The cache directory holds, per distribution-point URL, ``<key>.crl`` (the CRL as fetched) and
``<key>.url`` (the URL; ``key`` is a hash of it). Both are written atomically (temp file, fsync,
rename), the URL first, so a reader always sees a complete CRL. The ``.crl`` file's modification
time is the moment of the last successful fetch. Every read verifies the CRL again, so a file
changed on disk is not believed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509

from gateway.files import write_atomically
from gateway.logs import get_logger
from gateway.security.revocation.fetch import RevocationSourceError
from gateway.security.revocation.issuers import Issuer, Issuers

__all__ = ["CachedCrl", "CrlCache", "accept_crl", "crl_urls"]

log = get_logger("revocation")

#: Clocks differ; a CRL from a few minutes "in the future" is not refused for that.
CLOCK_SKEW: Final = timedelta(minutes=5)
_CRL_SUFFIX: Final = ".crl"
_URL_SUFFIX: Final = ".url"


def crl_urls(cert: x509.Certificate) -> tuple[str, ...]:
    """The http(s) URLs of ``cert``'s CRLDistributionPoints, in order (LDAP ones are skipped)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    urls: list[str] = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith(
                ("http://", "https://")
            ):
                urls.append(name.value)
    return tuple(dict.fromkeys(urls))


@dataclass(frozen=True, slots=True)
class CachedCrl:
    """A verified CRL, the issuer that signed it, and when it was fetched."""

    url: str
    crl: x509.CertificateRevocationList
    issuer: Issuer
    fetched_at: datetime

    @property
    def this_update(self) -> datetime:
        return self.crl.last_update_utc

    @property
    def next_update(self) -> datetime | None:
        return self.crl.next_update_utc

    def staleness(self, now: datetime, max_age: timedelta) -> str | None:
        """Why this CRL may no longer be relied on at ``now`` (English), or ``None``."""
        if self.next_update is not None and now > self.next_update:
            return f"past its nextUpdate {self.next_update:%Y-%m-%d %H:%M} UTC"
        if now - self.fetched_at > max_age:
            return f"last fetched {self.fetched_at:%Y-%m-%d %H:%M} UTC, longer ago than {max_age}"
        return None

    def revocation(self, cert: x509.Certificate) -> x509.RevokedCertificate | None:
        """The CRL's entry for ``cert``, if it lists it."""
        return self.crl.get_revoked_certificate_by_serial_number(cert.serial_number)


def accept_crl(
    data: bytes, issuers: Issuers, *, url: str, now: datetime
) -> tuple[x509.CertificateRevocationList, Issuer]:
    """The CRL in ``data`` and its issuer, if it may be used (see the module docstring);
    ``RevocationSourceError`` naming ``url`` and the reason otherwise."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
        extensions = crl.extensions
        this_update = crl.last_update_utc
    except ValueError as exc:
        raise RevocationSourceError(f"{url}: not a CRL: {exc}") from exc
    issuer = issuers.crl_issuer(crl)
    if issuer is None:
        raise RevocationSourceError(
            f"{url}: the CRL of {crl.issuer.rfc4514_string()} is not signed by a trusted issuer "
            "(revocation.issuers_dir)"
        )
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.DeltaCRLIndicator):
            raise RevocationSourceError(f"{url}: a delta CRL; a complete CRL is needed")
        if isinstance(value, x509.IssuingDistributionPoint) and (
            value.indirect_crl
            or value.only_contains_ca_certs
            or value.only_contains_attribute_certs
        ):
            raise RevocationSourceError(f"{url}: this CRL does not cover end-entity certificates")
    if this_update > now + CLOCK_SKEW:
        raise RevocationSourceError(f"{url}: thisUpdate {this_update:%Y-%m-%d %H:%M} is ahead")
    return crl, issuer


class CrlCache:
    """The CRLs fetched so far, on disk in ``directory`` and in memory; thread-safe."""

    def __init__(
        self,
        directory: Path,
        issuers: Issuers,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.directory = directory
        self.issuers = issuers
        self.clock = clock
        self._lock = threading.Lock()
        # url -> (identity of the .crl file when read, the CRL read)
        self._memory: dict[str, tuple[tuple[int, int, int], CachedCrl]] = {}

    def get(self, url: str) -> CachedCrl | None:
        """The cached CRL for ``url``, re-read if its file changed; ``None`` if there is none or
        it no longer verifies (then logged)."""
        path = self._path(url, _CRL_SUFFIX)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("crl_cache_unreadable", url=url, path=str(path), error=str(exc))
            return None
        identity = _identity(stat)
        with self._lock:
            known = self._memory.get(url)
            if known is not None and known[0] == identity:
                return known[1]
        cached = self._read(url, path, stat.st_mtime_ns)
        if cached is not None:
            with self._lock:
                self._memory[url] = (identity, cached)
        return cached

    def store(self, url: str, data: bytes, *, now: datetime) -> CachedCrl:
        """Verify ``data`` as the CRL of ``url`` and replace the cached one atomically.

        ``RevocationSourceError`` (and the cached CRL untouched) if it is not acceptable or is
        older than the cached one.
        """
        crl, issuer = accept_crl(data, self.issuers, url=url, now=now)
        current = self.get(url)
        if current is not None and crl.last_update_utc < current.this_update:
            raise RevocationSourceError(
                f"{url}: thisUpdate {crl.last_update_utc:%Y-%m-%d %H:%M} is older than the "
                f"cached CRL's {current.this_update:%Y-%m-%d %H:%M}"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        url_path = self._path(url, _URL_SUFFIX)
        if not url_path.exists():
            write_atomically(url_path, url.encode("utf-8"))
        path = self._path(url, _CRL_SUFFIX)
        write_atomically(path, data, sync_dir=True)
        stat = path.stat()
        cached = CachedCrl(url, crl, issuer, _from_ns(stat.st_mtime_ns))
        with self._lock:
            self._memory[url] = (_identity(stat), cached)
        return cached

    def urls(self) -> Iterator[str]:
        """The URL of every CRL file in the cache."""
        try:
            paths = sorted(self.directory.glob("*" + _CRL_SUFFIX))
        except OSError:
            return
        for path in paths:
            try:
                yield path.with_suffix(_URL_SUFFIX).read_text("utf-8").strip()
            except (OSError, UnicodeDecodeError):
                log.warning("crl_cache_orphan", path=str(path))

    def _read(self, url: str, path: Path, mtime_ns: int) -> CachedCrl | None:
        try:
            data = path.read_bytes()
            crl, issuer = accept_crl(data, self.issuers, url=url, now=self.clock())
        except (OSError, RevocationSourceError) as exc:
            log.warning("crl_cache_rejected", url=url, path=str(path), error=str(exc))
            return None
        return CachedCrl(url, crl, issuer, _from_ns(mtime_ns))

    def _path(self, url: str, suffix: str) -> Path:
        return self.directory / (hashlib.sha256(url.encode("utf-8")).hexdigest()[:32] + suffix)


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    # An atomic replacement is a new inode; an edit in place changes the time or the size.
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _from_ns(mtime_ns: int) -> datetime:
    return datetime.fromtimestamp(mtime_ns / 1e9, UTC)
