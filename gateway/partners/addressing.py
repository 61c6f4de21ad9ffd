"""Is a received message addressed to us, by whom it may come from, for a type we take?

Two places say who a message is from and for: the ebXML header (``check_addressing``: against
the sender's CPA when partners are configured, else only our HER id, Service and Action) and,
inside the payload, the MsgHead (``check_msghead_parties``). The ebXML checks raise ebXML
errors (answered with a MessageError), the MsgHead checks application errors (an AppRec).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.claims.message_types import MessageType, expected_for
from gateway.claims.model import MsgHead
from gateway.ebxml.model import MessageHeader
from gateway.errors import HeaderInconsistent, HeaderValueNotRecognized, UnknownReceiver
from gateway.partners.checks import TO_PARTY_ID, Agreement, check_header, check_service_action
from gateway.partners.registry import PartnerRegistry

__all__ = ["Addressed", "check_addressing", "check_msghead_parties"]


@dataclass(frozen=True, slots=True)
class Addressed:
    """An ebXML message accepted as addressed to us."""

    message_type: MessageType
    agreement: Agreement | None
    """The sender's CPA; None when no partners are configured (the embedded default)."""


def check_addressing(
    header: MessageHeader, partners: PartnerRegistry | None, our_her: str, *, at: datetime
) -> Addressed:
    """Accept ``header`` as addressed to ``our_her`` for a message type we take, under its CPA
    when ``partners`` are configured; else raise a ``HeaderValueNotRecognized`` or
    ``HeaderInconsistent`` naming the element at fault."""
    message_type = expected_for(header.service, header.action)
    if partners is not None:
        # CPAId, parties, roles, service and action against the sender's CPA.
        agreement = check_header(
            header,
            partners,
            our_her,
            service=message_type.service,
            action=message_type.action,
            at=at,
        )
        return Addressed(message_type, agreement)
    to_her = header.to_party.id_of("HER")
    if to_her != our_her:
        raise HeaderValueNotRecognized(
            f"Meldingen er adressert til HER-id {to_her}, men denne mottakeren har "
            f"HER-id {our_her}.",
            location=TO_PARTY_ID,
        )
    check_service_action(header, service=message_type.service, action=message_type.action)
    return Addressed(message_type, None)


def check_msghead_parties(head: MsgHead, agreement: Agreement | None, our_her: str) -> None:
    """The MsgHead's sender is the CPA's partner (if there is a CPA) and its receiver is us."""
    sender_her = head.sender.her_id
    if agreement is not None and sender_her and sender_her != agreement.partner.her_id:
        # A partner signs for itself only: a claim in another organisation's name is not
        # one this CPA covers.
        raise HeaderInconsistent(
            f"MsgHead er sendt fra HER-id {sender_her}, men CPA-en "
            f"{agreement.cpa.cpa_id} gjelder HER-id {agreement.partner.her_id}.",
            location="/MsgHead/MsgInfo/Sender/Organisation/Ident",
        )
    receiver_her = head.receiver.her_id
    if receiver_her != our_her:
        raise UnknownReceiver(
            f"MsgHead er adressert til HER-id {receiver_her}, men denne mottakeren har "
            f"HER-id {our_her}.",
            location="/MsgHead/MsgInfo/Receiver/Organisation/Ident",
        )
