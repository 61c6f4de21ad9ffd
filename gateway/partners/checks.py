"""Check a received ``eb:MessageHeader`` against the CPA it names.

The checks run in the order a sender can best act on: the CPA exists and is in force; the
message is addressed to us, as a party of that CPA; it comes from the CPA's other party; the
Service and Action are the ones this gateway takes, the sender may send them under this CPA and
we may receive them; the roles are the ones the CPA gives. The first failure raises:

- ``HeaderValueNotRecognized`` (``ValueNotRecognized``): a value we do not know at all (CPAId,
  a HER id that is not ours, a Service/Action this gateway does not take, a missing HER id);
- ``HeaderInconsistent`` (``Inconsistent``): values we know that do not fit together (a CPA not
  in force, a sender who is not the CPA's other party, an action the CPA does not allow, a role
  that is not the CPA's).

Each carries the XPath of the element at fault as ``location`` and a Norwegian detail: both
reach the sender in the ebXML MessageError (no AppRec).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from gateway.ebxml.model import MessageHeader, Party
from gateway.errors import HeaderInconsistent, HeaderValueNotRecognized
from gateway.partners.cpa import ActionBinding, Cpa, CpaParty
from gateway.partners.registry import PartnerRegistry

__all__ = [
    "ACTION",
    "CPA_ID",
    "FROM_PARTY_ID",
    "FROM_ROLE",
    "SERVICE",
    "SERVICE_TYPE",
    "TO_PARTY_ID",
    "TO_ROLE",
    "Agreement",
    "check_header",
    "check_parties",
    "check_service_action",
]

_MH: Final = "//eb:MessageHeader"
CPA_ID: Final = f"{_MH}/eb:CPAId"
FROM_PARTY_ID: Final = f"{_MH}/eb:From/eb:PartyId"
FROM_ROLE: Final = f"{_MH}/eb:From/eb:Role"
TO_PARTY_ID: Final = f"{_MH}/eb:To/eb:PartyId"
TO_ROLE: Final = f"{_MH}/eb:To/eb:Role"
SERVICE: Final = f"{_MH}/eb:Service"
SERVICE_TYPE: Final = f"{_MH}/eb:Service/@eb:type"
ACTION: Final = f"{_MH}/eb:Action"


@dataclass(frozen=True, slots=True)
class Agreement:
    """What a received message was accepted under: the CPA, both parties, and the two action
    bindings (the partner's CanSend, our CanReceive) that allow it."""

    cpa: Cpa
    us: CpaParty
    partner: CpaParty
    sent_as: ActionBinding
    """The partner's CanSend binding: its packaging says how the payload is wrapped."""
    received_as: ActionBinding

    @property
    def payload_compressed(self) -> bool:
        """The CPA says the payload is gzipped."""
        return self.sent_as.packaging.compressed

    @property
    def payload_encrypted(self) -> bool:
        """The CPA says the payload is CMS-enveloped (``application/pkcs7-mime``)."""
        return self.sent_as.packaging.encrypted


def check_header(
    header: MessageHeader,
    registry: PartnerRegistry,
    our_her: str,
    *,
    service: str,
    action: str,
    at: datetime,
) -> Agreement:
    """Accept ``header`` under its CPA for ``service``/``action`` received at ``at``
    (timezone-aware), or raise ``HeaderValueNotRecognized``/``HeaderInconsistent`` with the
    XPath of the element at fault."""
    cpa, us, partner = check_parties(header, registry, our_her, at=at)

    check_service_action(header, service=service, action=action)
    sent_as = partner.can_send(service, action)
    if sent_as is None:
        where = ACTION if partner.offers_service(service) else SERVICE
        raise HeaderInconsistent(
            f"CPA {cpa.cpa_id!r} gir ikke HER-id {partner.her_id} lov til å sende "
            f"{service}/{action}.",
            location=where,
        )
    received_as = us.can_receive(service, action)
    if received_as is None:
        where = ACTION if us.offers_service(service) else SERVICE
        raise HeaderInconsistent(
            f"Etter CPA {cpa.cpa_id!r} tar HER-id {us.her_id} ikke imot {service}/{action}.",
            location=where,
        )
    if (
        header.service_type is not None
        and sent_as.service_type is not None
        and header.service_type != sent_as.service_type
    ):
        raise HeaderInconsistent(
            f"Tjenesten {service} har type {header.service_type!r}, men CPA "
            f"{cpa.cpa_id!r} sier {sent_as.service_type!r}.",
            location=SERVICE_TYPE,
        )
    # eb:Role is optional in ebMS 2.0; when given it must be the CPA's.
    if header.from_party.role is not None and header.from_party.role != sent_as.role:
        raise HeaderInconsistent(
            f"Avsenderens rolle er {header.from_party.role!r}, men CPA {cpa.cpa_id!r} gir "
            f"HER-id {partner.her_id} rollen {sent_as.role!r} for {service}/{action}.",
            location=FROM_ROLE,
        )
    if header.to_party.role is not None and header.to_party.role != received_as.role:
        raise HeaderInconsistent(
            f"Mottakerens rolle er {header.to_party.role!r}, men CPA {cpa.cpa_id!r} gir "
            f"HER-id {us.her_id} rollen {received_as.role!r} for {service}/{action}.",
            location=TO_ROLE,
        )
    return Agreement(cpa=cpa, us=us, partner=partner, sent_as=sent_as, received_as=received_as)


def check_parties(
    header: MessageHeader, registry: PartnerRegistry, our_her: str, *, at: datetime
) -> tuple[Cpa, CpaParty, CpaParty]:
    """The first checks of ``check_header``, for any message (an MSH Ping or StatusRequest
    too): the CPA exists and is in force at ``at``, is addressed to us and comes from the
    CPA's other party. Returns ``(cpa, us, partner)``."""
    cpa = registry.by_cpa_id(header.cpa_id)
    if cpa is None:
        raise HeaderValueNotRecognized(
            f"CPA-id {header.cpa_id!r} er ukjent hos mottakeren; det finnes ingen avtale (CPA) "
            "med den id-en.",
            location=CPA_ID,
        )
    if not cpa.in_force(at):
        raise HeaderInconsistent(
            f"CPA {cpa.cpa_id!r} gjelder fra {_when(cpa.start)} til {_when(cpa.end)}, men "
            f"meldingen ble mottatt {_when(at)}.",
            location=CPA_ID,
        )
    us = _check_to(header.to_party, cpa, our_her)
    return cpa, us, _check_from(header.from_party, cpa, us)


def check_service_action(header: MessageHeader, *, service: str, action: str) -> None:
    """The header's Service and Action are the ones this gateway takes, or
    ``HeaderValueNotRecognized`` (with or without a CPA)."""
    if header.service != service:
        raise HeaderValueNotRecognized(
            f"Tjenesten {header.service!r} tas ikke imot her; forventet {service!r}.",
            location=SERVICE,
        )
    if header.action != action:
        raise HeaderValueNotRecognized(
            f"Handlingen {header.action!r} tas ikke imot for tjenesten {service}; "
            f"forventet {action!r}.",
            location=ACTION,
        )


def _check_to(to_party: Party, cpa: Cpa, our_her: str) -> CpaParty:
    """The CPA's party that is us, after checking the To PartyIds name exactly that party."""
    to_her = to_party.id_of("HER")
    if to_her is None:
        raise HeaderValueNotRecognized(
            "Mottakeren (eb:To) har ingen PartyId av typen HER.", location=TO_PARTY_ID
        )
    if to_her != our_her:
        raise HeaderValueNotRecognized(
            f"Meldingen er adressert til HER-id {to_her}, men denne mottakeren har "
            f"HER-id {our_her}.",
            location=TO_PARTY_ID,
        )
    us = cpa.party_by_her(our_her)
    if us is None:
        raise HeaderInconsistent(
            f"CPA {cpa.cpa_id!r} er ikke en avtale med HER-id {our_her}; den gjelder "
            f"{_parties(cpa)}.",
            location=CPA_ID,
        )
    _check_all_ids(to_party, us, cpa, TO_PARTY_ID, "Mottakeren (eb:To)")
    return us


def _check_from(from_party: Party, cpa: Cpa, us: CpaParty) -> CpaParty:
    """The CPA's other party, after checking the From PartyIds name exactly that party."""
    from_her = from_party.id_of("HER")
    if from_her is None:
        raise HeaderValueNotRecognized(
            "Avsenderen (eb:From) har ingen PartyId av typen HER.", location=FROM_PARTY_ID
        )
    partner = cpa.other(us)
    if from_her != partner.her_id:
        raise HeaderInconsistent(
            f"Avsenderen har HER-id {from_her}, men CPA {cpa.cpa_id!r} er inngått mellom "
            f"{_parties(cpa)}.",
            location=FROM_PARTY_ID,
        )
    _check_all_ids(from_party, partner, cpa, FROM_PARTY_ID, "Avsenderen (eb:From)")
    return partner


def _check_all_ids(party: Party, cpa_party: CpaParty, cpa: Cpa, location: str, who: str) -> None:
    # Every PartyId names the same party (ebMS 2.0 §3.1.1.1); one that is not in the CPA's
    # PartyInfo would mean the header names two parties at once.
    for party_id in party.party_ids:
        if not cpa_party.has_party_id(party_id):
            raise HeaderInconsistent(
                f"{who} har PartyId {party_id.value} (type {party_id.type or 'uten type'}), "
                f"som ikke er en id for {cpa_party.name} i CPA {cpa.cpa_id!r}.",
                location=location,
            )


def _parties(cpa: Cpa) -> str:
    first, second = cpa.parties
    return f"HER-id {first.her_id} og HER-id {second.her_id}"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
