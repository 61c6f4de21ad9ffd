"""The service that keeps the CRL cache fresh: fetch every partner certificate's CRL on a schedule.

``CrlRefresher`` has the daemon's service shape (``name``, ``async run(stop)``). Each round it
asks ``certificates()`` (the partner registry's, so a SIGHUP reload is picked up at the next
round) for the certificates in use, collects the CRL distribution points of those whose issuer is
trusted, and fetches each (in a thread: ``urllib`` blocks). A CRL that is fetched and accepted
replaces the cached one atomically (``CrlCache.store``); a failure (responder down, bad
signature, an older CRL, a cache that cannot be written) is logged and the cached CRL kept.

Rounds are ``refresh_interval`` apart; sooner if a cached CRL's ``nextUpdate`` comes first. After
a failed fetch the next round comes after ``retry_interval``, doubling with each failed round up
to ``refresh_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509

from gateway.logs import get_logger
from gateway.security.certificates import describe
from gateway.security.revocation.config import RevocationConfig
from gateway.security.revocation.crl import CrlCache, crl_urls
from gateway.security.revocation.fetch import RevocationSourceError, http_get

__all__ = ["CrlFetch", "CrlRefresher", "RefreshReport"]

log = get_logger("revocation")

#: ``http_get``'s shape: (url, timeout=, max_bytes=, accept=) -> bytes.
CrlFetch = Callable[..., bytes]
#: Never wait less than this between rounds, whatever a CRL's nextUpdate says.
_MIN_DELAY = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """One round: the URLs fetched and stored, and those that failed with why (English)."""

    fetched: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)
    unknown_issuers: tuple[str, ...] = ()
    """Certificates (described) whose issuer is not in ``issuers_dir``: nothing to fetch."""


class CrlRefresher:
    """Fetches the CRLs of ``certificates()`` into ``cache`` until stopped."""

    name = "revocation"

    def __init__(
        self,
        config: RevocationConfig,
        cache: CrlCache,
        certificates: Callable[[], Iterable[x509.Certificate]],
        *,
        fetch: CrlFetch = http_get,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.cache = cache
        self.certificates = certificates
        self._fetch = fetch
        self._clock = clock
        self._failed_rounds = 0
        self.last_report: RefreshReport | None = None

    def urls(self) -> tuple[dict[str, None], tuple[str, ...]]:
        """The CRL URLs to keep (in order) and the certificates with an untrusted issuer."""
        urls: dict[str, None] = {}
        unknown: list[str] = []
        for cert in self.certificates():
            if self.cache.issuers.issuer_of(cert) is None:
                unknown.append(describe(cert))
                continue
            urls.update(dict.fromkeys(crl_urls(cert)))
        return urls, tuple(dict.fromkeys(unknown))

    async def refresh(self) -> RefreshReport:
        """One round: fetch and store every CRL; never raises for a source that fails."""
        urls, unknown = self.urls()
        for who in unknown:
            log.warning("revocation_issuer_unknown", certificate=who)
        fetched: list[str] = []
        failed: dict[str, str] = {}
        for url in urls:
            try:
                await asyncio.to_thread(self._fetch_and_store, url)
            except (RevocationSourceError, OSError) as exc:
                # OSError: the cache could not be written (a full disk): retried like a fetch.
                failed[url] = (
                    str(exc)
                    if isinstance(exc, RevocationSourceError)
                    else f"{url}: the cache cannot be written: {exc}"
                )
                kept = await asyncio.to_thread(self.cache.get, url)
                log.warning(
                    "crl_fetch_failed",
                    url=url,
                    error=str(exc),
                    kept_this_update=kept.this_update.isoformat() if kept else None,
                )
            else:
                fetched.append(url)
        report = RefreshReport(tuple(fetched), failed, unknown)
        self.last_report = report
        self._failed_rounds = self._failed_rounds + 1 if failed else 0
        log.info("crl_refreshed", fetched=len(fetched), failed=len(failed))
        return report

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh now, then on the schedule (module docstring), until ``stop`` is set."""
        while not stop.is_set():
            await self.refresh()
            delay = await asyncio.to_thread(self.next_delay)  # reads the cache: off the loop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay.total_seconds())

    def next_delay(self) -> timedelta:
        """How long until the next round, after the one just done."""
        if self._failed_rounds:
            backoff: timedelta = self.config.retry_interval * 2 ** min(self._failed_rounds - 1, 16)
            return max(_MIN_DELAY, min(backoff, self.config.refresh_interval))
        delay = self.config.refresh_interval
        now = self._clock()
        for url in self.cache.urls():
            cached = self.cache.get(url)
            if cached is not None and cached.next_update is not None and cached.next_update > now:
                delay = min(delay, cached.next_update - now)
        # A CA late with its next CRL is asked again after retry_interval, not in a tight loop.
        floor = min(self.config.retry_interval, self.config.refresh_interval)
        return max(_MIN_DELAY, floor, delay)

    def _fetch_and_store(self, url: str) -> None:
        data = self._fetch(
            url,
            timeout=self.config.timeout,
            max_bytes=self.config.max_crl_bytes,
            accept="application/pkix-crl, application/x-pkcs7-crl;q=0.5, */*;q=0.1",
        )
        self.cache.store(url, data, now=self._clock())
