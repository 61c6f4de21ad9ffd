"""Whole claim messages as a sender's MSH would mail them: ebXML MIME around a MsgHead.

Used by the tests, the fixtures generator and the benchmark. Ships in the package on purpose
(like ``structlog.testing``), so operators can produce test traffic too.

A secured message is built in the order a real sender's MSH builds it: the MsgHead signed
(enveloped), then gzipped, then CMS-encrypted to the receiver's certificate, and last the ebMS
signature over the envelope and the final part bytes. ``open_reply`` undoes the same layers on a
reply of ours: verify the envelope, decrypt the payload, verify the MsgHead, find the AppRec.
"""

from __future__ import annotations

import gzip
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from lxml import etree

from gateway.ebxml import mime
from gateway.ebxml.compose import build_envelope, serialize
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import EbxmlMessage, ManifestReference, MessageHeader, Party, PartyId
from gateway.receipts.apprec import AppRecVersion, apprec_from_msghead
from gateway.security import cms
from gateway.security.signatures import sign_ebxml_envelope, verify_ebxml_envelope, verify_msghead
from gateway.security.xmldsig import Signer
from gateway.validation.safe_xml import parse_xml

__all__ = ["ENCRYPTED_CONTENT_TYPE", "OpenedReply", "Route", "ebxml_message", "open_reply"]

#: The Content-Type of a CMS-encrypted payload part.
ENCRYPTED_CONTENT_TYPE = "application/pkcs7-mime; smime-type=enveloped-data"


@dataclass(frozen=True, slots=True)
class Route:
    """Who sends to whom, on the ebXML level."""

    from_her: str = "8141253"
    to_her: str = "79768"
    from_role: str = "Behandler"
    to_role: str = "KontrollUtbetaler"
    cpa_id: str = "nav:qass:35065"
    service: str = "BehandlerKrav"
    service_type: str | None = "string"
    action: str = "OppgjorsMelding"
    mail_from: str = "behandler@speare.test"
    mail_to: str = "mottak@kuhr.test"


def ebxml_message(
    payload: bytes,
    *,
    route: Route = Route(),
    message_id: str | None = None,
    conversation_id: str | None = None,
    timestamp: datetime | None = None,
    compress: bool = False,
    ack_requested: bool = True,
    rng: random.Random | None = None,
    payload_signer: Signer | None = None,
    envelope_signer: Signer | None = None,
    encrypt_to: x509.Certificate | None = None,
) -> bytes:
    """A MIME multipart/related ebXML message carrying ``payload`` (a MsgHead document).

    ``payload_signer`` signs the MsgHead (enveloped) before anything else; ``compress`` gzips
    it; ``encrypt_to`` makes the part CMS enveloped data for that certificate (gzip inside, when
    both); ``envelope_signer`` adds the ebMS signature over the envelope and the final part.
    """
    rng = rng or random.Random()  # noqa: S311 - test ids, not secrets
    message_id = message_id or f"{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    conversation_id = conversation_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
    timestamp = timestamp or datetime.now(UTC)
    content_id = f"payload-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}@sender.test"
    header = MessageHeader(
        from_party=Party((PartyId(route.from_her, "HER"),), route.from_role),
        to_party=Party((PartyId(route.to_her, "HER"),), route.to_role),
        cpa_id=route.cpa_id,
        conversation_id=conversation_id,
        service=route.service,
        service_type=route.service_type,
        action=route.action,
        message_id=message_id,
        timestamp=timestamp,
        ref_to_message_id=None,
        time_to_live=None,
        duplicate_elimination=False,
    )
    envelope = build_envelope(
        header,
        manifest=[ManifestReference(href=f"cid:{content_id}", content_id=content_id)],
        ack_requested=ack_requested,
        ack_signed=ack_requested,
    )
    if payload_signer is not None:
        signed = payload_signer.sign(parse_xml(payload))
        payload = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    body = gzip.compress(payload, mtime=0) if compress else payload
    content_type = "application/gzip" if compress else "text/xml"
    if encrypt_to is not None:
        body = cms.encrypt(body, encrypt_to, at=timestamp)
        content_type = ENCRYPTED_CONTENT_TYPE
    part = mime.OutgoingPart(content_id=content_id, content_type=content_type, body=body)
    if envelope_signer is not None:
        envelope = serialize(sign_ebxml_envelope(envelope, envelope_signer, {content_id: body}))
    return mime.build(
        envelope,
        [part],
        mail_from=route.mail_from,
        mail_to=route.mail_to,
        subject=f"ebXML {route.service}/{route.action}",
        message_id=f"<{message_id}>",
        date=timestamp,
    )


@dataclass(frozen=True, slots=True)
class OpenedReply:
    """One of our replies, opened as its receiver would: every layer checked."""

    envelope: EbxmlMessage
    """The envelope as it was signed (parsed from what the signature covers)."""
    content_types: tuple[str, ...]
    """The payload parts' Content-Types (``type/subtype``), in order."""
    msghead: etree._Element | None
    """The MsgHead as it was signed, for an AppRec in the MsgHead carrier; else None."""
    apprec: etree._Element | None
    """The AppRec: the payload itself (bare, as the network carries it), or the one inside
    ``msghead``."""

    @property
    def status(self) -> str | None:
        """The AppRec's ``Status/@V``."""
        if self.apprec is None:
            return None
        status = self.apprec.find(f"{{{etree.QName(self.apprec).namespace}}}Status")
        return None if status is None else status.get("V")

    @property
    def error_codes(self) -> tuple[str, ...]:
        """The AppRec's ``Error/@V`` codes, in order."""
        if self.apprec is None:
            return ()
        namespace = etree.QName(self.apprec).namespace
        return tuple(e.get("V") or "" for e in self.apprec.findall(f"{{{namespace}}}Error"))


def open_reply(
    eml: bytes,
    our_certificate: x509.Certificate,
    decryption_keys: Sequence[cms.DecryptionKey] = (),
    *,
    at: datetime | None = None,
) -> OpenedReply:
    """Open a reply mail of the gateway as an EPJ would: verify the ebMS signature against
    ``our_certificate`` (required; it covers the payload part by its ``cid:`` reference),
    decrypt an encrypted payload with ``decryption_keys`` (the partner's), unpack gzip, and read
    the AppRec: bare, or (the per-partner MsgHead carrier) inside a MsgHead whose own signature
    is verified too.

    Raises the library's ``SecurityFailure``/``SignatureInvalid``/``CertificateInvalid`` for
    whatever does not check out, and ``ValueError`` for an encrypted part without a key.
    """
    at = at or datetime.now(UTC)
    package = mime.unwrap(eml)
    attachments = {p.content_id: p.body for p in package.attachments if p.content_id}
    signed = verify_ebxml_envelope(
        package.envelope.body, attachments, our_certificate, at, required=True
    )
    envelope = parse_envelope(serialize(signed))
    content_types = tuple(p.content_type for p in package.attachments)
    if not envelope.manifest:
        return OpenedReply(envelope, content_types, None, None)
    reference = envelope.manifest[0]
    part = package.part(reference.content_id or reference.href)
    if part is None:
        raise ValueError(f"the manifest names {reference.href}, which is not in the package")
    body = part.body
    if part.content_type == "application/pkcs7-mime":
        if not decryption_keys:
            raise ValueError("the payload is encrypted, and no decryption key was given")
        body = cms.decrypt(body, decryption_keys)
    if body.startswith(b"\x1f\x8b"):
        body = cms.gunzip(body)
    root = parse_xml(body)
    if root.tag in {f"{{{version.namespace}}}AppRec" for version in AppRecVersion}:
        return OpenedReply(envelope, content_types, None, root)
    msghead = verify_msghead(root, our_certificate, at, required=True)
    return OpenedReply(envelope, content_types, msghead, apprec_from_msghead(msghead))
