"""What ``gateway health`` reports about revocation: the state of the CRL cache, per CRL.

``revocation_health(config, now, certificates)`` reads the cache directory (so it works from the
CLI, beside a running daemon) and returns, per cached CRL: its URL and issuer, when it was last
fetched and how long ago, its thisUpdate and nextUpdate, and whether it is stale (older than
``max_age`` since the last fetch, or past its nextUpdate). Given the partner certificates in use,
it also reports each CRL they need that was never fetched, and each certificate whose issuer is
not trusted.

The status is ``fail`` when anything is stale, missing or unusable, whatever ``stale`` says:
fail-open only decides what happens to messages meanwhile, not whether an operator must act.
It is ``warn`` when nothing is cached and no certificates were given, else ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography import x509

from gateway.errors import ConfigurationError
from gateway.security.certificates import describe
from gateway.security.revocation.config import RevocationConfig
from gateway.security.revocation.crl import CrlCache, crl_urls
from gateway.security.revocation.issuers import Issuers

__all__ = ["CrlState", "RevocationHealth", "revocation_health"]

HealthStatus = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class CrlState:
    """One CRL of the cache (or one that should be there)."""

    url: str
    issuer: str | None = None
    last_fetch: datetime | None = None
    age: timedelta | None = None
    this_update: datetime | None = None
    next_update: datetime | None = None
    stale: bool = True
    problem: str | None = None
    """Why it is stale, missing or unusable (English), else ``None``."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601, the age in seconds)."""
        return {
            "url": self.url,
            "issuer": self.issuer,
            "last_fetch": _iso(self.last_fetch),
            "age_seconds": None if self.age is None else int(self.age.total_seconds()),
            "this_update": _iso(self.this_update),
            "next_update": _iso(self.next_update),
            "stale": self.stale,
            "problem": self.problem,
        }


@dataclass(frozen=True, slots=True)
class RevocationHealth:
    """The revocation check for ``gateway health``: a status, a one-line detail, the CRLs."""

    status: HealthStatus
    detail: str
    crls: tuple[CrlState, ...] = ()

    @property
    def ok(self) -> bool:
        """False only on a failure (a warning is ok), as ``gateway.service.health.Check``."""
        return self.status != "fail"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": "revocation",
            "status": self.status,
            "ok": self.ok,
            "detail": self.detail,
            "crls": [crl.as_dict() for crl in self.crls],
        }


def revocation_health(
    config: RevocationConfig,
    now: datetime,
    certificates: Iterable[x509.Certificate] = (),
) -> RevocationHealth:
    """The state of the CRL cache at ``now`` (module docstring); never raises."""
    try:
        issuers = Issuers.load(config.issuers_dir)
    except ConfigurationError as exc:
        return RevocationHealth("fail", f"issuers cannot be loaded: {exc}")
    cache = CrlCache(config.cache_dir, issuers, clock=lambda: now)
    states: dict[str, CrlState] = {url: _state(cache, url, config, now) for url in cache.urls()}
    problems: list[str] = []
    for cert in certificates:
        if issuers.issuer_of(cert) is None:
            problems.append(f"issuer of {describe(cert)} is not in revocation.issuers_dir")
            continue
        for url in crl_urls(cert):
            if url not in states:
                states[url] = CrlState(url, problem="never fetched")
    crls = tuple(states.values())
    bad = [crl for crl in crls if crl.stale]
    problems.extend(f"{crl.url}: {crl.problem}" for crl in bad)
    if problems:
        return RevocationHealth("fail", f"{len(problems)} problem(s): " + "; ".join(problems), crls)
    if not crls:
        return RevocationHealth("warn", "no CRL cached yet", crls)
    oldest = max((crl.age for crl in crls if crl.age is not None), default=timedelta(0))
    policy = config.stale
    return RevocationHealth(
        "ok", f"{len(crls)} CRL(s) fresh, oldest fetched {_human(oldest)} ago ({policy})", crls
    )


def _state(cache: CrlCache, url: str, config: RevocationConfig, now: datetime) -> CrlState:
    cached = cache.get(url)
    if cached is None:
        return CrlState(url, problem="cached file unreadable or no longer verifies")
    staleness = cached.staleness(now, config.max_age)
    return CrlState(
        url=url,
        issuer=cached.issuer.name,
        last_fetch=cached.fetched_at,
        age=now - cached.fetched_at,
        this_update=cached.this_update,
        next_update=cached.next_update,
        stale=staleness is not None,
        problem=None if staleness is None else f"stale: {staleness}",
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _human(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
