"""``RevocationChecker.check(cert, at)``: is a partner's certificate revoked?

The order, for a certificate issued by a trusted issuer (``revocation.issuers_dir``):

1. **OCSP**, if ``[[revocation.ocsp]]`` names its issuer: a verified answer (``ocsp.py``) of
   *good* settles it, *revoked* refuses it. Answers are kept until their ``nextUpdate`` (at most
   ``ocsp_max_age``), so a busy partner costs one request per period, not one per message. An
   *unknown* answer, or no usable answer at all (responder down, bad signature, wrong nonce), is
   logged and the CRL decides.
2. **The CRL**, from the cache the refresh service keeps (``refresh.py``): listed with a
   revocation date at or before ``at`` refuses it (even in a stale CRL: a revocation is not
   undone); not listed in a fresh CRL lets it pass.
3. Otherwise its status **cannot be established**: the issuer is not trusted, the certificate
   names no CRL, the CRL was never fetched or is stale. With ``stale = "fail-closed"`` (the
   default) that refuses the certificate (``RevocationUnknown``, AppRec S99); with
   ``"fail-open"`` it is logged and the certificate passes.

A refusal is ``CertificateRevoked`` (AppRec S03) or ``RevocationUnknown``; on the ebXML level the
signature verifier turns both into ``SecurityFailure``. Texts are in Norwegian: they reach the
sender. ``check`` blocks for at most the OCSP timeout; the pipeline calls it from its worker
thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from gateway.errors import CertificateRevoked, RevocationUnknown
from gateway.logs import get_logger
from gateway.security.certificates import describe
from gateway.security.revocation.config import RevocationConfig
from gateway.security.revocation.crl import CachedCrl, CrlCache, crl_urls
from gateway.security.revocation.fetch import RevocationSourceError
from gateway.security.revocation.issuers import Issuer, Issuers
from gateway.security.revocation.ocsp import OcspAnswer, ocsp_url, query

__all__ = ["OcspQuery", "RevocationChecker"]

log = get_logger("revocation")

#: ``query``'s shape: (certificate, issuer, url, now=, max_age=, timeout=) -> answer.
OcspQuery = Callable[..., OcspAnswer]


class RevocationChecker:
    """Checks certificates against OCSP and the CRL cache; safe to share between threads."""

    def __init__(
        self,
        config: RevocationConfig,
        issuers: Issuers,
        cache: CrlCache,
        *,
        ocsp_query: OcspQuery = query,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.issuers = issuers
        self.cache = cache
        self._ocsp_query = ocsp_query
        self._clock = clock
        self._lock = threading.Lock()
        # (issuer fingerprint, serial) -> (answer, usable until)
        self._answers: dict[tuple[bytes, int], tuple[OcspAnswer, datetime]] = {}

    @classmethod
    def from_config(
        cls, config: RevocationConfig, cache: CrlCache | None = None
    ) -> RevocationChecker:
        """A checker with the issuers of ``config`` (``ConfigurationError`` if they cannot be
        loaded) and ``cache`` (share the refresh service's), or a cache of its own."""
        issuers = cache.issuers if cache is not None else Issuers.load(config.issuers_dir)
        return cls(config, issuers, cache or CrlCache(config.cache_dir, issuers))

    def check(self, cert: x509.Certificate, at: datetime) -> None:
        """Return if ``cert`` was not revoked at ``at``; else raise (see the module docstring)."""
        who = describe(cert)
        issuer = self.issuers.issuer_of(cert)
        if issuer is None:
            self._undetermined(
                cert,
                f"utstederen ({cert.issuer.rfc4514_string()}) er ikke blant mottakerens "
                "godkjente utstedere",
                "issuer not in revocation.issuers_dir",
            )
            return
        answer = self._ocsp(cert, issuer)
        if answer is not None and answer.status != "unknown":
            if answer.status == "revoked" and (
                answer.revoked_at is None or answer.revoked_at <= at
            ):
                raise CertificateRevoked(_revoked_text(who, answer.revoked_at, "OCSP"))
            return
        self._check_crl(cert, issuer, at, who)

    # --- CRL ---

    def _check_crl(self, cert: x509.Certificate, issuer: Issuer, at: datetime, who: str) -> None:
        urls = crl_urls(cert)
        if not urls:
            self._undetermined(cert, "sertifikatet oppgir ingen sperreliste (CRL)", "no CRL URL")
            return
        now = self._clock()
        fresh = stale = False
        problems: list[str] = []
        for url in urls:
            cached = self.cache.get(url)
            if cached is None or not _same_issuer(cached, issuer):
                problems.append(f"{url}: not fetched (or not from the certificate's issuer)")
                continue
            entry = cached.revocation(cert)
            if entry is not None and entry.revocation_date_utc <= at:
                raise CertificateRevoked(_revoked_text(who, entry.revocation_date_utc, "CRL"))
            staleness = cached.staleness(now, self.config.max_age)
            if staleness is None:
                fresh = True
            else:
                stale = True
                problems.append(f"{url}: {staleness}")
        if not fresh:
            self._undetermined(
                cert,
                "sperrelisten (CRL) er utdatert" if stale else "sperrelisten (CRL) er ikke hentet",
                "; ".join(problems),
            )

    # --- OCSP ---

    def _ocsp(self, cert: x509.Certificate, issuer: Issuer) -> OcspAnswer | None:
        responder = self.config.responder_for(issuer.file_name)
        if responder is None:
            return None
        url = responder.url or ocsp_url(cert)
        if url is None:
            log.warning("ocsp_no_url", certificate=describe(cert), issuer=issuer.name)
            return None
        key = (issuer.certificate.fingerprint(hashes.SHA256()), cert.serial_number)
        now = self._clock()
        with self._lock:
            known = self._answers.get(key)
        if known is not None and now <= known[1]:
            return known[0]
        try:
            answer = self._ocsp_query(
                cert,
                issuer,
                url,
                now=now,
                max_age=self.config.ocsp_max_age,
                timeout=self.config.timeout,
            )
        except RevocationSourceError as exc:
            log.warning("ocsp_failed", url=url, certificate=describe(cert), error=str(exc))
            return None
        if answer.status == "unknown":
            log.warning("ocsp_unknown", url=url, certificate=describe(cert))
        until = now + self.config.ocsp_max_age
        if answer.next_update is not None:
            until = min(until, answer.next_update)
        with self._lock:
            self._answers[key] = (answer, until)
        return answer

    # --- neither ---

    def _undetermined(self, cert: x509.Certificate, text: str, reason: str) -> None:
        if self.config.fail_closed:
            log.warning("revocation_unknown_refused", certificate=describe(cert), reason=reason)
            raise RevocationUnknown(
                f"Det kan ikke fastslås om sertifikatet ({describe(cert)}) er tilbaketrukket: "
                f"{text}."
            )
        log.warning("revocation_unknown_accepted", certificate=describe(cert), reason=reason)


def _same_issuer(cached: CachedCrl, issuer: Issuer) -> bool:
    """The CRL was signed with the key that issued the certificate (not a namesake's)."""
    return cached.issuer.certificate.public_key() == issuer.certificate.public_key()


def _revoked_text(who: str, when: datetime | None, source: str) -> str:
    since = f" fra {when:%Y-%m-%d %H:%M} UTC" if when is not None else ""
    return f"Sertifikatet ({who}) er tilbaketrukket av utstederen{since} (ifølge {source})."
