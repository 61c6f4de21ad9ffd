"""Turns a decision into reply files: ebXML signals and AppRecs, ready for the outbox.

- An ebXML message gets ebXML back: an ``Acknowledgment`` when it asked for one (signed ones
  carry the acknowledged message's ``ds:Reference`` copies), a ``MessageError`` for
  transport-level problems, a ``Pong`` or ``StatusResponse`` for a Ping or StatusRequest, and the
  AppRec wrapped in an ebXML message with the answered type's reply Service and Action (for a
  BehandlerKrav: ``BehandlerKrav``/``Svarmelding``), From/To swapped and ``RefToMessageId``
  pointing at the claim. The AppRec is the **bare** ``<AppRec>`` (``ReplyPackaging`` says which
  version, and whether it is gzipped and CMS-encrypted, as the partner's CPA declares); its
  integrity and origin are the signed ebXML envelope's ``cid:`` reference over the payload part.
- A bare MsgHead dropped in the spool gets the bare AppRec as a file (``.xml``) and a detached
  CMS signature over its exact bytes beside it (``.xml.p7s``, ``gateway.security.cms_signed``).
- Only a partner configured with ``apprec_carrier = "msghead"`` gets the AppRec inside a signed
  MsgHead of type ``APPREC`` instead (enveloped XML-DSig; no ``.p7s`` then).

Which of these carry a signature is ``ReplySignatures`` (``gateway.receipts.signing``): the
AppRec's own (whichever of the three forms above it takes), the other envelopes, and the
acknowledgment, each as the agreement or ``[signing] replies`` requires.
"""

from __future__ import annotations

import gzip
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from lxml import etree

from gateway.claims.model import Code, Organisation
from gateway.clock import local_naive
from gateway.config import IdentityConfig
from gateway.ebxml import mime
from gateway.ebxml.compose import build_envelope, reply_header, serialize
from gateway.ebxml.model import EbxmlMessage, ManifestReference, MessageHeader, Party, PartyId
from gateway.ebxml.signals import (
    ErrorDetail,
    MessageStatus,
    StatusRequest,
    build_acknowledgment,
    build_message_error,
    build_pong,
    build_status_response,
)
from gateway.receipts.apprec import (
    AppRec,
    AppRecError,
    AppRecStatus,
    build_apprec,
    serialize_apprec,
    wrap_in_msghead,
)
from gateway.receipts.packaging import ReplyPackaging
from gateway.receipts.signing import DOCUMENT_ONLY, ReplySignatures
from gateway.records import ReplyRecord
from gateway.security import cms, cms_signed
from gateway.security.signatures import sign_ebxml_envelope
from gateway.security.xmldsig import Signer

#: ``ReplyRecord.kind`` of the detached signature beside a bare AppRec file.
APPREC_SIGNATURE = "apprec_signature"
#: Content-Types of the AppRec payload part, by its outermost layer.
_ENCRYPTED = "application/pkcs7-mime; smime-type=enveloped-data"
_GZIP = "application/x-gzip"

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
    #: Which replies are signed (``gateway.receipts.signing``; the AppRec's own signature only
    #: by default here).
    signatures: ReplySignatures = DOCUMENT_ONLY
    #: How the AppRec is written and wrapped for this partner (its CPA and ``[replies]``).
    packaging: ReplyPackaging = field(default_factory=ReplyPackaging)

    @property
    def encrypt_to(self) -> x509.Certificate | None:
        """The partner's encryption certificate: the AppRec payload is CMS-encrypted to it."""
        return self.packaging.encrypt_to

    # --- ebXML signals --------------------------------------------------------------------------

    def acknowledgment(
        self, incoming: EbxmlMessage, *, references: Sequence[bytes] = ()
    ) -> ReplyRecord:
        """The Acknowledgment of ``incoming``; ``references``: the ``ds:Reference`` copies of
        its verified signature, when it asked for a signed acknowledgment (ebMS 2.0 §6.3.2.5)."""
        message_id = self._ebxml_id()
        envelope = build_acknowledgment(
            incoming.header,
            message_id=message_id,
            timestamp=self.now,
            references=references,
        )
        return self._ebxml_reply(
            "acknowledgment", envelope, (), message_id, incoming.header.message_id
        )

    def pong(self, ping: MessageHeader) -> ReplyRecord:
        """The Pong answering a Ping (ebMS 2.0 §8)."""
        message_id = self._ebxml_id()
        envelope = build_pong(ping, message_id=message_id, timestamp=self.now)
        return self._ebxml_reply("pong", envelope, (), message_id, ping.message_id)

    def status_response(
        self, request: StatusRequest, status: MessageStatus, received_at: datetime | None
    ) -> ReplyRecord:
        """The StatusResponse to a StatusRequest (ebMS 2.0 §7)."""
        message_id = self._ebxml_id()
        envelope = build_status_response(
            request,
            status,
            received_at=received_at if status.has_timestamp else None,
            message_id=message_id,
            timestamp=self.now,
        )
        return self._ebxml_reply(
            "status_response", envelope, (), message_id, request.header.message_id
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
    ) -> tuple[ReplyRecord, ...]:
        """The AppRec, in an ebXML message when the claim came so, else as a file (bare: with
        its detached signature beside it)."""
        local_now = local_naive(self.now).replace(microsecond=0)
        apprec = AppRec(
            id=self.new_id(),
            gen_date=local_now,
            sender=self.identity.organisation(),
            receiver=receiver,
            status=status,
            errors=tuple(errors),
            original_msg_type=original.msg_type,
            original_issue_date=original.issue_date,
            original_msg_id=original.msg_id,
            software_name="gateway",
            software_version=_version(),
            version=self.packaging.version,
        )
        document = self._apprec_document(apprec)
        if incoming is None:
            return self._apprec_files(document)
        message_id = self._ebxml_id()
        content_id = f"apprec-{uuid.uuid4().hex}@{_mail_domain(self.identity.mail_address)}"
        header = reply_header(
            incoming.header,
            action=self.reply_action,
            service=self.reply_service,
            service_type=incoming.header.service_type,
            message_id=message_id,
            timestamp=self.now,
            duplicate_elimination=self.packaging.duplicate_elimination,
        )
        envelope = build_envelope(
            header,
            manifest=[ManifestReference(href=f"cid:{content_id}", content_id=content_id)],
            ack_requested=True,
            ack_signed=False,
        )
        part = self._apprec_part(content_id, document)
        reply = self._ebxml_reply(
            "apprec", envelope, (part,), message_id, incoming.header.message_id, awaits_ack=True
        )
        return (reply,)

    def _apprec_document(self, apprec: AppRec) -> bytes:
        """The bare AppRec's bytes, or a signed MsgHead carrying it (the per-partner option)."""
        if self.packaging.carrier == "bare":
            return serialize_apprec(apprec)
        carrier = wrap_in_msghead(
            build_apprec(apprec),
            msg_id=self.new_id(),
            gen_date=apprec.gen_date,
            sender=apprec.sender,
            receiver=apprec.receiver,
        )
        if self.signatures.document:
            carrier = self.signer.sign(carrier)
        return etree.tostring(carrier, xml_declaration=True, encoding="UTF-8")

    def _apprec_files(self, document: bytes) -> tuple[ReplyRecord, ...]:
        """A spool answer: the AppRec file and, for a bare one, ``<file>.p7s`` beside it."""
        filename = self.file_name("apprec", "xml")
        file = ReplyRecord(kind="apprec", recipient=self.mail_to, filename=filename, body=document)
        if self.packaging.carrier != "bare" or not self.signatures.document:
            return (file,)  # the MsgHead carries its own enveloped signature (if required)
        signature = cms_signed.sign(document, self.signer.key, self.signer.certificate)
        return (
            file,
            ReplyRecord(
                kind=APPREC_SIGNATURE,
                recipient=self.mail_to,
                filename=filename + cms_signed.SIGNATURE_SUFFIX,
                body=signature,
            ),
        )

    def _apprec_part(self, content_id: str, document: bytes) -> mime.OutgoingPart:
        """The payload part, packaged as the CPA says: gzip, then CMS enveloped-data."""
        body = document
        content_type = "application/xml" if self.packaging.carrier == "bare" else "text/xml"
        if self.packaging.compress:
            body, content_type = gzip.compress(body, mtime=0), _GZIP
        if self.packaging.encrypt_to is not None:
            body = cms.encrypt(body, self.packaging.encrypt_to, at=self.now)
            content_type = _ENCRYPTED
        return mime.OutgoingPart(content_id=content_id, content_type=content_type, body=body)

    # --- helpers --------------------------------------------------------------------------------

    def _signs(self, kind: str) -> bool:
        """Whether the envelope of our ``kind`` of ebXML message is signed: an acknowledgment as
        required for it; the AppRec's also when its signature is the AppRec's own (a bare one);
        the others as the agreement says."""
        signatures = self.signatures
        if kind == "acknowledgment":
            return signatures.acknowledgment
        if kind == "apprec" and self.packaging.carrier == "bare":
            return signatures.envelope or signatures.document
        return signatures.envelope

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
        if self._signs(kind):
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
