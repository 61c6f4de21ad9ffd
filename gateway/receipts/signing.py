"""Which of our replies are signed: what the partner's agreement asks for, or every one.

A signature costs an RSA operation (about 1 ms of CPU), so gateway signs what someone will
check, not everything it could. ``[signing] replies`` in the config chooses:

- ``"agreed"`` (the default): what the agreement requires.

  * The **AppRec** always carries a signature of its own: it is the one answer whose integrity
    every receiver relies on, with or without a CPA, over the file outbox as over mail. Which
    signature depends on its carrier (``gateway.receipts.replies``): a bare AppRec in ebXML is
    signed by its envelope's signature (whose ``cid:`` reference covers the payload), a bare
    AppRec file by a detached CMS signature beside it (``.p7s``), a MsgHead carrier by its own
    enveloped XML-DSig.
  * The **ebXML envelope** of our AppRec and MessageError is signed when our side of the CPA
    says we sign what we send on that channel (``SenderNonRepudiation`` with a
    ``SigningCertificateRef`` in our ``ebXMLSenderBinding``, as in NAV's CPAs). A gateway with
    partners configured that answers a message no agreement covers (an unknown CPA, a stranger)
    signs too: it cannot know what the sender's MSH expects, and such errors are rare. A gateway
    without partners (the embedded default) has no one who asked for it.
  * An **Acknowledgment** is signed when the message it acknowledges asked for a signed one
    (``eb:AckRequested eb:signed="true"``, ebMS 2.0 §6.3.1.3), or when the envelopes are signed.

- ``"all"``: every envelope, acknowledgment and document is signed (gateway's behaviour before
  this choice existed; for partners that check signatures their CPA does not announce).

``required_signatures`` is the one place that decides; the reply builders ask it and do what it
says. ``ReplySignatures.count`` is how many RSA operations an answered claim costs, which the
benchmark uses for its floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.config import Config
from gateway.ebxml.model import EbxmlMessage
from gateway.partners.checks import Agreement

__all__ = [
    "ALL_SIGNED",
    "DOCUMENT_ONLY",
    "ReplySignatures",
    "ReplySigning",
    "reply_signing_of",
    "required_signatures",
]


class ReplySigning(StrEnum):
    """``[signing] replies``: sign what the agreement requires, or every reply."""

    AGREED = "agreed"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class ReplySignatures:
    """Which signatures the replies to one received message carry."""

    document: bool
    """The AppRec's own signature (its form depends on the carrier: see the module)."""
    envelope: bool
    """The ebMS signature on the envelopes of our other messages (MessageError, Pong,
    StatusResponse), and on our AppRec message's beyond what its own signature needs."""
    acknowledgment: bool
    """The ebMS signature on our Acknowledgment."""

    def count(self, *, ebxml: bool, acknowledged: bool, bare: bool = True) -> int:
        """RSA operations for an answered claim: the AppRec's (a bare one in ebXML: its
        envelope's, one signature for both), its envelope's when it came as ebXML in a MsgHead
        carrier, and an acknowledgment's when one is sent."""
        if ebxml and bare:
            apprec = int(self.document or self.envelope)
        else:
            apprec = int(self.document) + int(ebxml and self.envelope)
        return apprec + int(ebxml and acknowledged and self.acknowledgment)


#: Every reply signed.
ALL_SIGNED = ReplySignatures(document=True, envelope=True, acknowledgment=True)
#: The AppRec document only: ``"agreed"`` without a CPA and without a signed ack asked for.
DOCUMENT_ONLY = ReplySignatures(document=True, envelope=False, acknowledgment=False)


def reply_signing_of(config: Config) -> ReplySigning:
    """``[signing] replies`` (default ``"agreed"``); ``ConfigurationError`` names a bad value."""
    table = config.table("signing")
    return ReplySigning(table.choice("replies", tuple(ReplySigning), ReplySigning.AGREED))


def required_signatures(
    choice: ReplySigning,
    agreement: Agreement | None,
    incoming: EbxmlMessage | None,
    *,
    partners: bool,
    reply_service: str | None = None,
    reply_action: str | None = None,
) -> ReplySignatures:
    """The signatures our replies to ``incoming`` carry, under ``agreement`` (None: no CPA
    covers it); ``partners``: this gateway has partners (CPAs) configured.

    ``reply_service``/``reply_action`` name our AppRec message, whose channel in the CPA says
    whether we sign envelopes (our default MSH channel when they are not given)."""
    if choice is ReplySigning.ALL:
        return ALL_SIGNED
    # Without an agreement: a gateway with partners signs (see the module), one without does not.
    envelope = partners if agreement is None else _we_sign(agreement, reply_service, reply_action)
    asked = incoming is not None and incoming.ack_requested and incoming.ack_signed
    return ReplySignatures(document=True, envelope=envelope, acknowledgment=envelope or asked)


def _we_sign(agreement: Agreement, service: str | None, action: str | None) -> bool:
    """Our side of the CPA names a signing certificate for what we send (non-repudiation)."""
    us = agreement.us
    binding = us.can_send(service, action) if service and action else None
    sender = us.channel_for(binding).sender
    return sender is not None and sender.signing_cert_id is not None
