"""Turns a decision into reply files: ebXML signals and signed AppRecs, ready for the outbox.

- An ebXML message gets ebXML back: an ``Acknowledgment`` when it asked for one, a
  ``MessageError`` for transport-level problems, and the AppRec (a signed MsgHead carrying the
  AppRec) wrapped in an ebXML message with the answered type's reply Service and Action (for a
  BehandlerKrav: ``BehandlerKrav``/``Svarmelding``), From/To swapped and ``RefToMessageId``
  pointing at the claim.
- A bare MsgHead dropped in the spool gets a bare signed MsgHead+AppRec back (``.xml``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from lxml import etree

from gateway.claims.model import Code, Organisation
from gateway.clock import local_naive
from gateway.config import IdentityConfig
from gateway.ebxml import mime
from gateway.ebxml.compose import build_envelope, reply_header, serialize
from gateway.ebxml.model import EbxmlMessage, ManifestReference, MessageHeader, Party, PartyId
from gateway.ebxml.signals import ErrorDetail, build_acknowledgment, build_message_error
from gateway.receipts.apprec import (
    AppRec,
    AppRecError,
    AppRecStatus,
    build_apprec,
    wrap_in_msghead,
)
from gateway.records import ReplyRecord
from gateway.security import cms
from gateway.security.signatures import sign_ebxml_envelope
from gateway.security.xmldsig import Signer

UNKNOWN_PARTY = Party(party_ids=(PartyId("unknown"),), role=None)


@dataclass(frozen=True, slots=True)
class OriginalRef:
    """What the AppRec answers: OriginalMsgId (type, issue date, id)."""

    msg_type: Code
    issue_date: datetime
    msg_id: str


@dataclass(frozen=True, slots=True)
class Replier:
    """Builds the replies to one received message."""

    identity: IdentityConfig
    signer: Signer
    now: datetime  # UTC, aware
    source_name: str  # the file name the message arrived as, to name the reply files after
    mail_to: str
    #: The ebXML Service and Action of our AppRec message (the answered type's, see
    #: ``gateway.claims.message_types``).
    reply_service: str
    reply_action: str
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())
    #: Sign every ebXML envelope we send (ebMS 2.0 ds:Signature in SOAP:Header).
    sign_envelopes: bool = False
    #: The partner's encryption certificate from its CPA: the AppRec payload is CMS-encrypted.
    encrypt_to: x509.Certificate | None = None

    # --- ebXML signals --------------------------------------------------------------------------

    def acknowledgment(self, incoming: EbxmlMessage) -> ReplyRecord:
        message_id = self._ebxml_id()
        envelope = build_acknowledgment(incoming.header, message_id=message_id, timestamp=self.now)
        return self._ebxml_reply(
            "acknowledgment", envelope, (), message_id, incoming.header.message_id
        )

    def message_error(
        self,
        incoming: MessageHeader | None,
        code: str,
        description: str,
        location: str | None,
        *,
        ref_to_message_id: str | None = None,
    ) -> ReplyRecord:
        """An ebXML MessageError. Without a readable header, ``ref_to_message_id`` (the
        MessageId we could still find, if any) lets the sender match it to its message."""
        message_id = self._ebxml_id()
        detail = ErrorDetail(
            code=code, severity="Error", location=location, description=description
        )
        envelope = build_message_error(
            incoming,
            [detail],
            message_id=message_id,
            timestamp=self.now,
            our_party=self._our_party(),
            # A message too broken to name its sender is still answered (kept in the outbox,
            # addressed to an explicit unknown party) rather than dropped without a trace.
            their_party=incoming.from_party if incoming else UNKNOWN_PARTY,
            ref_to_message_id=None if incoming else ref_to_message_id,
        )
        return self._ebxml_reply(
            "message_error",
            envelope,
            (),
            message_id,
            incoming.message_id if incoming else ref_to_message_id,
        )

    # --- AppRec ---------------------------------------------------------------------------------

    def apprec(
        self,
        *,
        incoming: EbxmlMessage | None,
        receiver: Organisation,
        original: OriginalRef,
        status: AppRecStatus,
        errors: Sequence[AppRecError],
    ) -> ReplyRecord:
        """A signed MsgHead carrying the AppRec; wrapped in ebXML when the claim came so."""
        local_now = local_naive(self.now).replace(microsecond=0)
        us = self.identity.organisation()
        apprec = AppRec(
            id=self.new_id(),
            gen_date=local_now,
            sender=us,
            receiver=receiver,
            status=status,
            errors=tuple(errors),
            original_msg_type=original.msg_type,
            original_issue_date=original.issue_date,
            original_msg_id=original.msg_id,
            software_name="gateway",
            software_version=_version(),
        )
        carrier = wrap_in_msghead(
            build_apprec(apprec),
            msg_id=self.new_id(),
            gen_date=local_now,
            sender=us,
            receiver=receiver,
        )
        signed = etree.tostring(self.signer.sign(carrier), xml_declaration=True, encoding="UTF-8")
        if incoming is None:
            return ReplyRecord(
                kind="apprec",
                recipient=self.mail_to,
                filename=self.file_name("apprec", "xml"),
                body=signed,
            )
        message_id = self._ebxml_id()
        content_id = f"apprec-{uuid.uuid4().hex}@{_mail_domain(self.identity.mail_address)}"
        header = reply_header(
            incoming.header,
            action=self.reply_action,
            service=self.reply_service,
            service_type=incoming.header.service_type,
            message_id=message_id,
            timestamp=self.now,
        )
        envelope = build_envelope(
            header,
            manifest=[ManifestReference(href=f"cid:{content_id}", content_id=content_id)],
            ack_requested=True,
            ack_signed=False,
        )
        if self.encrypt_to is not None:
            part = mime.OutgoingPart(
                content_id=content_id,
                content_type="application/pkcs7-mime; smime-type=enveloped-data",
                body=cms.encrypt(signed, self.encrypt_to, at=self.now),
            )
        else:
            part = mime.OutgoingPart(content_id=content_id, content_type="text/xml", body=signed)
        return self._ebxml_reply(
            "apprec", envelope, (part,), message_id, incoming.header.message_id, awaits_ack=True
        )

    # --- helpers --------------------------------------------------------------------------------

    def _our_party(self) -> Party:
        return Party(
            party_ids=(PartyId(self.identity.her_id, "HER"),), role=self.identity.ebxml_role
        )

    def _ebxml_id(self) -> str:
        return f"{self.new_id()}@{_mail_domain(self.identity.mail_address)}"

    def _ebxml_reply(
        self,
        kind: str,
        envelope: bytes,
        parts: Sequence[mime.OutgoingPart],
        message_id: str,
        ref_to: str | None,
        *,
        awaits_ack: bool = False,
    ) -> ReplyRecord:
        if self.sign_envelopes:
            envelope = serialize(
                sign_ebxml_envelope(envelope, self.signer, {p.content_id: p.body for p in parts})
            )
        body = mime.build(
            envelope,
            parts,
            mail_from=self.identity.mail_address,
            mail_to=self.mail_to,
            subject=f"ebXML {kind}" + (f" for {ref_to}" if ref_to else ""),
            message_id=f"<{message_id}>",
            date=self.now,
        )
        return ReplyRecord(
            kind=kind,
            recipient=self.mail_to,
            filename=self.file_name(kind, "eml"),
            body=body,
            ebxml_message_id=message_id,
            ref_to_message_id=ref_to,
            awaits_ack=awaits_ack,
        )

    def file_name(self, kind: str, ext: str) -> str:
        """A reply file's name: after the file the message came in as, then the reply's kind
        (``claim.msg`` -> ``claim.apprec.<id>.eml``)."""
        stem = _SAFE.sub("_", self.source_name.rsplit(".", 1)[0])[:80] or "message"
        return f"{stem}.{kind}.{uuid.uuid4().hex[:8]}.{ext}"


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _mail_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1] if "@" in address else "gateway.local"


def _version() -> str:
    from gateway import __version__

    return __version__
