"""Revocation of partner certificates: CRLs from the issuers' distribution points, OCSP where
configured, and what happens when neither can say (``docs/revocation.md``).

- ``config``: ``RevocationConfig``, the ``[revocation]`` table.
- ``issuers``: the trusted issuer certificates (``revocation.issuers_dir``).
- ``fetch``: bounded HTTP GET/POST (standard library, in a thread).
- ``crl``: which CRLs are acceptable, and the atomic on-disk cache of them.
- ``ocsp``: one OCSP request and the checks on its answer.
- ``checker``: ``RevocationChecker.check(cert, at)``, the check signature verification calls.
- ``refresh``: ``CrlRefresher``, the service that keeps the cache fresh.
- ``health``: ``revocation_health``, the cache state for ``gateway health``.

Wiring (the daemon): ``RevocationConfig.from_toml`` → ``Revocation.start(config, certificates)``
gives the shared cache, the checker for the pipeline and the refresher for the daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography import x509

from gateway.security.revocation.checker import RevocationChecker
from gateway.security.revocation.config import OcspResponder, RevocationConfig, StalePolicy
from gateway.security.revocation.crl import CrlCache
from gateway.security.revocation.health import CrlState, RevocationHealth, revocation_health
from gateway.security.revocation.issuers import Issuers
from gateway.security.revocation.refresh import CrlRefresher

__all__ = [
    "CrlRefresher",
    "CrlState",
    "OcspResponder",
    "Revocation",
    "RevocationChecker",
    "RevocationConfig",
    "RevocationHealth",
    "StalePolicy",
    "revocation_health",
]


@dataclass(frozen=True, slots=True)
class Revocation:
    """The parts that share one CRL cache: the checker and the refresh service."""

    checker: RevocationChecker
    refresher: CrlRefresher

    @classmethod
    def start(
        cls,
        config: RevocationConfig,
        certificates: Callable[[], Iterable[x509.Certificate]],
    ) -> Revocation:
        """Load the issuers (``ConfigurationError`` if they cannot be) and build both parts;
        ``certificates`` gives the partner certificates in use (the registry's)."""
        cache = CrlCache(config.cache_dir, Issuers.load(config.issuers_dir))
        return cls(
            RevocationChecker.from_config(config, cache),
            CrlRefresher(config, cache, certificates),
        )
