"""Every CPA the operator installed, from one directory, looked up by CPAId or by HER ids.

Loading is all-or-nothing on purpose. A registry missing one partner would answer that partner's
valid claims with ``ValueNotRecognized``; keeping the previous registry and telling the operator
is better. So:

- ``PartnerRegistry.scan(directory)`` reads every ``*.xml`` file and returns the registry of the
  good ones together with a ``CpaProblem`` per bad file: one bad file never hides the others;
- ``PartnerRegistry.load(directory)`` is ``scan`` that raises ``PartnerRegistryError`` (a
  ``ConfigurationError``: the daemon refuses to start) listing *every* problem, with the
  registry of the good files as ``partial`` for whoever wants to look;
- ``registry.reloaded(directory)`` is for SIGHUP: the new registry if the directory is clean,
  else this same registry and the problems to log. The daemon never runs on a half-read directory.

Two files with the same CPAId are a problem (of the later file, in name order). An empty
directory is not: it gives an empty registry, which recognises no CPA.

Beside the CPAs, ``<HER id>.signing.pem`` files add signing certificates for a partner during its
certificate rollover (``gateway.partners.rollover``); they load and reload with the CPAs.

Certificate lookups come in pairs: ``signing_certificates``/``encryption_certificates`` give
every candidate (several during a rollover), ``signing_certificate``/``encryption_certificate``
the one to use when only one can be (the first, resp. the newest valid at ``at``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509

from gateway.errors import ConfigurationError, GatewayError
from gateway.partners.cpa import Cpa, CpaInvalid, CpaParty, RetryPolicy, load_cpa
from gateway.partners.cpa_model import preferred_certificate
from gateway.partners.rollover import ROLLOVER_SUFFIX, apply_rollover, read_rollover

__all__ = [
    "CpaProblem",
    "PartnerNotFound",
    "PartnerRegistry",
    "PartnerRegistryError",
    "ScanResult",
]


@dataclass(frozen=True, slots=True)
class CpaProblem:
    """A CPA file that was not loaded, and why (English, for the operator's log)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class PartnerRegistryError(ConfigurationError):
    """The partners directory holds files that cannot be used; ``problems`` lists them all."""

    def __init__(self, directory: Path, problems: Sequence[CpaProblem], partial: PartnerRegistry):
        lines = "; ".join(str(p) for p in problems)
        super().__init__(
            f"{directory}: {len(problems)} CPA file(s) cannot be used: {lines}"
            if problems
            else f"{directory}: cannot be read"
        )
        self.directory = directory
        self.problems = tuple(problems)
        self.partial = partial


class PartnerNotFound(GatewayError, LookupError):
    """No CPA (or no usable value in it) for the partner asked about."""


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What ``PartnerRegistry.scan`` found: the good CPAs and the bad files."""

    registry: PartnerRegistry
    problems: tuple[CpaProblem, ...]


@dataclass(frozen=True, slots=True)
class PartnerRegistry:
    """An immutable set of CPAs; build with ``load``/``scan``/``of``."""

    cpas: tuple[Cpa, ...] = ()
    directory: Path | None = None
    _by_id: dict[str, Cpa] = field(default_factory=dict, repr=False, compare=False)
    _by_pair: dict[tuple[str, str], tuple[Cpa, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    # --- building ---

    @classmethod
    def of(cls, cpas: Sequence[Cpa], directory: Path | None = None) -> PartnerRegistry:
        """A registry of ``cpas``; raises ``ValueError`` on a repeated CPAId."""
        by_id: dict[str, Cpa] = {}
        pairs: dict[tuple[str, str], list[Cpa]] = {}
        for cpa in cpas:
            if cpa.cpa_id in by_id:
                raise ValueError(
                    f"CPAId {cpa.cpa_id!r} is in both {by_id[cpa.cpa_id].source} and {cpa.source}"
                )
            by_id[cpa.cpa_id] = cpa
            first, second = (party.her_id or "" for party in cpa.parties)
            pairs.setdefault((first, second), []).append(cpa)
            pairs.setdefault((second, first), []).append(cpa)
        # Newest agreement first: renewals overlap the old one for a while.
        by_pair = {
            key: tuple(sorted(value, key=lambda c: c.start, reverse=True))
            for key, value in pairs.items()
        }
        return cls(tuple(cpas), directory, by_id, by_pair)

    @classmethod
    def scan(cls, directory: Path) -> ScanResult:
        """Read every ``*.xml`` in ``directory`` (not recursive, in name order, no dot files).

        Bad files become ``CpaProblem``s; the rest form the registry. Raises
        ``PartnerRegistryError`` only if the directory itself cannot be listed.
        """
        try:
            # Dot files are editors' and atomic writers' temporaries, not CPAs.
            names = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
        except OSError as exc:
            raise PartnerRegistryError(
                directory,
                [CpaProblem(directory, f"cannot list the partners directory: {exc.strerror}")],
                cls(directory=directory),
            ) from exc
        paths = [p for p in names if p.suffix.lower() == ".xml"]
        good: list[Cpa] = []
        seen: dict[str, Path] = {}
        problems: list[CpaProblem] = []
        for path in paths:
            if not path.is_file():
                continue
            try:
                cpa = load_cpa(path)
            except CpaInvalid as exc:
                problems.append(CpaProblem(path, exc.reason))
                continue
            if cpa.cpa_id in seen:
                problems.append(
                    CpaProblem(path, f"CPAId {cpa.cpa_id!r} is already used by {seen[cpa.cpa_id]}")
                )
                continue
            seen[cpa.cpa_id] = path
            good.append(cpa)
        rollover_paths = [p for p in names if p.name.endswith(ROLLOVER_SUFFIX) and p.is_file()]
        rollover, unreadable = read_rollover(rollover_paths)
        problems.extend(CpaProblem(path, reason) for path, reason in unreadable)
        good, unused = apply_rollover(good, rollover)
        problems.extend(
            CpaProblem(directory / f"{her_id}{ROLLOVER_SUFFIX}", f"no CPA has HER id {her_id}")
            for her_id in unused
        )
        return ScanResult(cls.of(good, directory), tuple(problems))

    @classmethod
    def load(cls, directory: Path) -> PartnerRegistry:
        """Every CPA in ``directory``; ``PartnerRegistryError`` listing each bad file if any."""
        result = cls.scan(directory)
        if result.problems:
            raise PartnerRegistryError(directory, result.problems, result.registry)
        return result.registry

    def reloaded(
        self, directory: Path | None = None
    ) -> tuple[PartnerRegistry, tuple[CpaProblem, ...]]:
        """Read the directory again (SIGHUP): ``(new registry, ())`` if every file is good,
        else ``(self, problems)``: the registry in use is kept and the problems are to be logged.
        """
        target = directory or self.directory
        if target is None:
            raise ValueError("this registry was not loaded from a directory; name one")
        try:
            return self.load(target), ()
        except PartnerRegistryError as exc:
            return self, exc.problems

    # --- lookups ---

    def __len__(self) -> int:
        return len(self.cpas)

    def __iter__(self) -> Iterator[Cpa]:
        return iter(self.cpas)

    def by_cpa_id(self, cpa_id: str) -> Cpa | None:
        """The CPA with this CPAId, or ``None``."""
        return self._by_id.get(cpa_id)

    def by_parties(
        self, our_her: str, partner_her: str, *, at: datetime | None = None
    ) -> Cpa | None:
        """The CPA between the two HER ids: the newest in force at ``at`` (newest of all
        without ``at``), or ``None``."""
        candidates = self._by_pair.get((our_her, partner_her), ())
        if at is not None:
            candidates = tuple(c for c in candidates if c.in_force(at))
        return candidates[0] if candidates else None

    def partner(
        self, our_her: str, partner_her: str, *, at: datetime | None = None
    ) -> tuple[Cpa, CpaParty, CpaParty]:
        """``(cpa, us, partner)`` for the pair; ``PartnerNotFound`` without a CPA."""
        cpa = self.by_parties(our_her, partner_her, at=at)
        if cpa is None:
            when = f" in force at {at.isoformat()}" if at is not None else ""
            raise PartnerNotFound(f"no CPA{when} between HER {our_her} and HER {partner_her}")
        us = cpa.party_by_her(our_her)
        partner = cpa.party_by_her(partner_her)
        assert us is not None and partner is not None  # indexed by these ids
        return cpa, us, partner

    def mail_address(
        self,
        our_her: str,
        partner_her: str,
        *,
        service: str | None = None,
        action: str | None = None,
        at: datetime | None = None,
    ) -> str:
        """Where to mail the partner: the ``mailto:`` endpoint of the channel on which the
        partner receives ``service``/``action`` (its default MSH channel without them)."""
        cpa, _, partner = self.partner(our_her, partner_her, at=at)
        binding = partner.can_receive(service, action) if service is not None and action else None
        channel = partner.channel_for(binding)
        if channel.mail_address is None:
            raise PartnerNotFound(
                f"{cpa.source}: channel {channel.channel_id!r} of HER {partner_her} has no "
                f"mailto: endpoint (endpoint {channel.endpoint!r})"
            )
        return channel.mail_address

    def encryption_certificates(
        self,
        our_her: str,
        partner_her: str,
        *,
        service: str | None = None,
        at: datetime | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """Every certificate the partner may be encrypted to (``ApplicationCertificateRef``)."""
        return self._certificates(
            our_her, partner_her, at, "encryption", lambda p: p.encryption_certificates(service)
        )

    def encryption_certificate(
        self,
        our_her: str,
        partner_her: str,
        *,
        service: str | None = None,
        at: datetime | None = None,
    ) -> x509.Certificate:
        """The partner's certificate to encrypt payloads to: of ``encryption_certificates``,
        the newest valid at ``at`` (the first without ``at``)."""
        candidates = self.encryption_certificates(our_her, partner_her, service=service, at=at)
        chosen = preferred_certificate(candidates, at)
        assert chosen is not None  # _certificates never returns an empty tuple
        return chosen

    def signing_certificates(
        self,
        our_her: str,
        partner_her: str,
        *,
        service: str | None = None,
        action: str | None = None,
        at: datetime | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """Every certificate the partner may sign ``service``/``action`` with (its default MSH
        channel's, for signals, without them): a signature by any of them verifies."""

        def pick(partner: CpaParty) -> tuple[x509.Certificate, ...]:
            binding = partner.can_send(service, action) if service is not None and action else None
            return partner.signing_certificates(binding)

        return self._certificates(our_her, partner_her, at, "signing", pick)

    def signing_certificate(
        self,
        our_her: str,
        partner_her: str,
        *,
        service: str | None = None,
        action: str | None = None,
        at: datetime | None = None,
    ) -> x509.Certificate:
        """The first of ``signing_certificates``: the one the CPA names first."""
        return self.signing_certificates(
            our_her, partner_her, service=service, action=action, at=at
        )[0]

    def partner_certificates(self, our_her: str) -> tuple[x509.Certificate, ...]:
        """Every certificate of every party but us, in every CPA, each once: what revocation
        checking must cover (``gateway.security.revocation``)."""
        seen: dict[x509.Certificate, None] = {}
        for cpa in self.cpas:
            for party in cpa.parties:
                if party.her_id != our_her:
                    seen.update(dict.fromkeys(party.all_certificates))
        return tuple(seen)

    def _certificates(
        self,
        our_her: str,
        partner_her: str,
        at: datetime | None,
        what: str,
        pick: Callable[[CpaParty], tuple[x509.Certificate, ...]],
    ) -> tuple[x509.Certificate, ...]:
        """``pick`` applied to the partner of the pair's CPA; ``PartnerNotFound`` if empty."""
        cpa, _, partner = self.partner(our_her, partner_her, at=at)
        found = pick(partner)
        if not found:
            raise PartnerNotFound(f"{cpa.source}: HER {partner_her} has no {what} certificate")
        return found

    def retry_policy(
        self,
        our_her: str,
        partner_her: str,
        *,
        service: str | None = None,
        action: str | None = None,
        at: datetime | None = None,
    ) -> RetryPolicy | None:
        """How we resend ``service``/``action`` to the partner until acknowledged: our sending
        channel's ``ebXMLSenderBinding`` (the partner's receiving one if ours says nothing).
        ``None`` if the CPA asks for no reliable messaging."""
        _, us, partner = self.partner(our_her, partner_her, at=at)
        ours = us.can_send(service, action) if service is not None and action else None
        theirs = partner.can_receive(service, action) if service is not None and action else None
        for exchange in (us.channel_for(ours).sender, partner.channel_for(theirs).receiver):
            if exchange is None or exchange.reliable_messaging is None:
                continue
            reliable = exchange.reliable_messaging
            if reliable.retries is None or reliable.retry_interval is None:
                continue
            return RetryPolicy(
                retries=reliable.retries,
                interval=reliable.retry_interval,
                persist_duration=exchange.persist_duration,
            )
        return None
