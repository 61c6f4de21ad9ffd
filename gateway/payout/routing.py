"""Where a payout decision may go: only with a Service/Action the receiver's CPA lists.

A decision is an ebXML message we start, so, with partners configured, the receiver's CPA must
say it takes it: the receiver's party has a ``CanReceive`` for the decision's Service/Action
(``BehandlerKrav``/``Utbetalingsvedtak``). The binding's package says whether the payload is
gzipped and CMS-encrypted to the receiver, and its channel where the mail goes.

A receiver without such a CPA (no CPA at all, one not in force, or one whose actions do not
include the decision's) gets no mail: the decision is **held**, with the reason, for ``gateway
payout show`` and ``gateway health`` to say, and goes out once the CPA allows it (a reloaded
partners directory, then the next run or ``gateway payout resend``). Nothing is lost: the
decision itself is stored when the run is enqueued, whatever its route. A CPA that wants the
payload encrypted to a certificate that cannot be used also holds the decision: it is not sent
in the clear.

Without partners configured (the embedded default) decisions go as before: the default
Service/Action, the practice register's CPAId and mail address, not encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509

from gateway.errors import CertificateInvalid
from gateway.partners.cpa import Cpa, CpaParty
from gateway.partners.registry import PartnerRegistry
from gateway.security.certificates import Purpose, check_certificate

__all__ = ["ACTION", "SERVICE", "SERVICE_TYPE", "DecisionRoute", "Held", "route_decision"]

SERVICE: Final = "BehandlerKrav"
SERVICE_TYPE: Final = "string"
ACTION: Final = "Utbetalingsvedtak"


@dataclass(frozen=True, slots=True)
class DecisionRoute:
    """How one decision goes out."""

    cpa_id: str
    service: str
    service_type: str | None
    action: str
    recipient: str
    compress: bool = False
    encrypt_to: x509.Certificate | None = None


@dataclass(frozen=True, slots=True)
class Held:
    """A decision that may not go out now, and why (English, for the operator)."""

    reason: str


def route_decision(
    *,
    receiver_her: str,
    recipient: str,
    cpa_id: str,
    partners: PartnerRegistry | None,
    our_her: str,
    at: datetime,
) -> DecisionRoute | Held:
    """The route of a decision to ``receiver_her``; ``recipient`` and ``cpa_id`` are the
    practice register's, used as they are without partners."""
    service, action = SERVICE, ACTION
    if partners is None:
        return DecisionRoute(cpa_id, service, SERVICE_TYPE, action, recipient)
    cpa = _cpa(partners, cpa_id, our_her, receiver_her, at)
    if cpa is None:
        return Held(f"no CPA in force between HER {our_her} and receiver HER {receiver_her}")
    us, partner = cpa.party_by_her(our_her), cpa.party_by_her(receiver_her)
    assert us is not None and partner is not None  # _cpa picked a CPA between the two
    binding = partner.can_receive(service, action)
    if binding is None:
        return Held(
            f"CPA {cpa.cpa_id} ({cpa.source}) lists no {service}/{action} that HER "
            f"{receiver_her} receives; add it to the CPA"
        )
    encrypt_to = None
    if binding.packaging.encrypted:
        certificate = _encryption_certificate(partner, service, at)
        if isinstance(certificate, Held):
            return certificate
        encrypt_to = certificate
    address = partner.channel_for(binding).mail_address
    return DecisionRoute(
        cpa_id=cpa.cpa_id,
        service=service,
        service_type=binding.service_type,
        action=action,
        recipient=address or recipient,
        compress=binding.packaging.compressed,
        encrypt_to=encrypt_to,
    )


def _cpa(
    partners: PartnerRegistry, cpa_id: str, our_her: str, receiver_her: str, at: datetime
) -> Cpa | None:
    """The register's CPAId when it names a CPA in force between the two, else theirs."""
    named = partners.by_cpa_id(cpa_id)
    if (
        named is not None
        and named.in_force(at)
        and named.party_by_her(our_her) is not None
        and named.party_by_her(receiver_her) is not None
        and our_her != receiver_her
    ):
        return named
    return partners.by_parties(our_her, receiver_her, at=at)


def _encryption_certificate(
    partner: CpaParty, service: str, at: datetime
) -> x509.Certificate | Held:
    certificate = partner.encryption_certificate(service, at=at)
    if certificate is None:
        return Held(
            f"the CPA wants decisions to HER {partner.her_id} encrypted, but names no "
            "encryption certificate"
        )
    try:
        check_certificate(certificate, at, Purpose.ENCRYPTION)
    except CertificateInvalid as exc:
        return Held(f"HER {partner.her_id}'s encryption certificate cannot be used: {exc.detail}")
    return certificate
