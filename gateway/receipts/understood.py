"""What is known of one received message so far: enough to address its answer and to remember
its ids, whichever stage stopped it.

The conductor (``gateway.pipeline``) sets each field once, when its stage has read it; until
then it is None. Readers take None for "not known" (a message broken at the MIME level has no
header, one broken in its payload no MsgHead) and fall back as the methods here do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from gateway.claims.message_types import MessageType
from gateway.claims.model import Code, Ident, MsgHead, Organisation
from gateway.claims.msghead import parse_msghead
from gateway.clock import local_naive
from gateway.ebxml.model import EbxmlMessage
from gateway.ebxml.unwrap import Packaged, Unwrapped
from gateway.errors import ContentError
from gateway.partners.checks import Agreement
from gateway.partners.cpa import CpaParty
from gateway.receipts.replies import OriginalRef
from gateway.records import MessageRecord, Outcome

__all__ = ["Understood"]

#: Outcomes that leave no ids to remember: a message answered with an ebXML MessageError was not
#: received, so a corrected retry with the same MessageId must be processed, not answered again.
_FORGOTTEN = frozenset({Outcome.DUPLICATE, Outcome.SIGNAL, Outcome.EBXML_ERROR})


@dataclass(slots=True)
class Understood:
    """One received message as far as it has been read."""

    received_at: datetime  # UTC
    source_ref: str
    source_name: str
    unwrapped: Unwrapped | None = None
    message: EbxmlMessage | None = None
    """The ebXML envelope; once its signature is verified, the envelope that was signed."""
    message_type: MessageType | None = None
    agreement: Agreement | None = None
    """The sender's CPA, once the ebXML header (or a bare MsgHead's sender) is accepted under
    it."""
    partner: CpaParty | None = None
    """The CPA party an MSH request (Ping, StatusRequest) came from: no agreement covers it."""
    signature_references: tuple[bytes, ...] = ()
    """The ``ds:Reference`` copies of the verified ebXML signature, when a signed
    acknowledgment was asked for: stored with the received row, carried by the ack."""
    payload_sha256: str | None = None
    document: etree._Element | None = None
    """The payload as parsed, before its signature and schema are checked: only to name what
    the answer answers (``addressed_head``), never to decide anything."""
    head: MsgHead | None = None
    """The MsgHead as verified and read."""
    remember_msg_id: bool = True
    """False when the MsgId belongs to another message already (E10)."""

    @property
    def packaged(self) -> Packaged | None:
        return self.unwrapped if isinstance(self.unwrapped, Packaged) else None

    def reply_address(self) -> str:
        """Where replies go: the CPA's transport endpoint, not whatever the mail's From header
        says; else that header, else the sender's HER id (resolved by the outbox)."""
        if self.agreement is not None:
            address = self.agreement.partner.channel_for(self.agreement.sent_as).mail_address
            if address:
                return address
        elif self.partner is not None and self.partner.default_channel.mail_address:
            return self.partner.default_channel.mail_address
        packaged = self.packaged
        if packaged is not None and packaged.mail_from:
            return packaged.mail_from
        her = self._ebxml_sender_her()
        if her:
            return f"HER:{her}"
        if self.head is not None and self.head.sender.her_id:
            return f"HER:{self.head.sender.her_id}"
        return "unknown"

    def addressed_head(self) -> MsgHead | None:
        """The MsgHead as read, if it could be: the verified one, else the one of the payload
        before its checks (a signature or schema failure, an unsupported content). Names what
        an answer answers and to whom it goes; its ids are never remembered unverified."""
        if self.head is not None:
            return self.head
        if self.document is None:
            return None
        try:
            return parse_msghead(self.document).head
        except ContentError:
            return None

    def partner_her(self) -> str | None:
        """The HER id of the partner the answer goes to: its CPA's, else the MsgHead sender's,
        else the ebXML From party's."""
        if self.agreement is not None and self.agreement.partner.her_id:
            return self.agreement.partner.her_id
        if self.partner is not None and self.partner.her_id:
            return self.partner.her_id
        head = self.addressed_head()
        if head is not None and head.sender.her_id:
            return head.sender.her_id
        return self._ebxml_sender_her()

    def claim_sender(self) -> Organisation:
        """Who the AppRec goes to: the MsgHead sender, else the ebXML From party."""
        head = self.addressed_head()
        if head is not None:
            return head.sender
        her = self._ebxml_sender_her()
        if her:
            return Organisation(name=f"HER-id {her}", idents=(Ident(her, "HER"),))
        # Nothing readable names the sender: the AppRec still goes to the outbox, explicitly
        # addressed to an unknown HER id, so the rejection is on record.
        return Organisation(name="Ukjent avsender", idents=(Ident("ukjent", "HER"),))

    def original_ref(self) -> OriginalRef:
        """What the AppRec answers: the MsgHead's ids whenever it could be read (also for a
        signature or schema failure, or content we do not take), else the ebXML message's."""
        head = self.addressed_head()
        if head is not None:
            return OriginalRef(head.msg_type, head.gen_date, head.msg_id)
        header = self.message.header if self.message is not None else None
        issued = local_naive(header.timestamp if header else self.received_at)
        return OriginalRef(
            Code("UKJENT", text="Ukjent meldingstype"),
            issued.replace(microsecond=0),
            header.message_id if header else self.source_name,
        )

    def record(
        self, outcome: Outcome, *, apprec_status: int | None, ruleset_version: str | None
    ) -> MessageRecord | None:
        """The ids to remember for duplicate detection and lookups, if any."""
        if outcome in _FORGOTTEN or (self.message is None and self.head is None):
            return None
        header = self.message.header if self.message else None
        head = self.head
        return MessageRecord(
            cpa_id=header.cpa_id if header else None,
            ebxml_message_id=header.message_id if header else None,
            conversation_id=header.conversation_id if header else None,
            from_her=header.from_party.id_of("HER") if header else None,
            to_her=header.to_party.id_of("HER") if header else None,
            service=header.service if header else None,
            action=header.action if header else None,
            content_sha256=self.unwrapped.content_sha256 if self.unwrapped else None,
            payload_sha256=self.payload_sha256,
            msg_id=head.msg_id if head and self.remember_msg_id else None,
            msg_type=head.msg_type.value if head else None,
            sender_her=head.sender.her_id if head else None,
            sender_name=head.sender.name if head else None,
            gen_date=head.gen_date if head else None,
            apprec_status=apprec_status,
            ruleset_version=ruleset_version,
        )

    def _ebxml_sender_her(self) -> str | None:
        return self.message.header.from_party.id_of("HER") if self.message else None
