"""``gateway validate --verify-signatures``: check a file's signatures as the daemon would.

Both signatures a claim can carry are checked with the daemon's own verifiers
(``gateway.security.signatures``): the ebMS signature in ``SOAP:Header`` (over the envelope and,
by ``cid:`` reference, the payload part) and the MsgHead's enveloped signature. Against what:

- ``--cert FILE``: that certificate (PEM or DER), pinned;
- ``--cpa FILE``: the sending party's signing certificates from that CPA (old and new during a
  rollover), pinned, as the daemon checks them;
- neither: the certificate the signature itself carries (``KeyInfo``, or the CMS SignedData's).
  That proves the content is intact and was signed by that key, not who holds it: the result
  says the signer is **not pinned**.

A bare AppRec file (as gateway answers a MsgHead dropped in its spool) is checked against the
detached CMS signature beside it (``<file>.p7s``, ``gateway.security.cms_signed.verify``).

When: ``--at DATETIME`` (ISO 8601; without a zone, Norwegian local time), ``--at signing-time``
(the envelope's Timestamp, the MsgHead's GenDate: "was it valid when it was signed?"), or now.
The digest is checked before the certificate's dates, so a tampered file is reported as such
even when its certificate has expired since.

The file is unpacked by the same code as in the daemon (``gateway.ebxml.unwrap``, ``payload``),
with the same bounds. An encrypted payload is opened only with the configured decryption keys.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from lxml import etree

from gateway.claims.msghead import MSGHEAD_NS, parse_msghead
from gateway.clock import OSLO
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import EbxmlMessage
from gateway.ebxml.payload import Decrypt, extract_payload
from gateway.ebxml.unwrap import BareDocument, Packaged, unwrap
from gateway.errors import ContentError, EbxmlError, MessageError
from gateway.partners.cpa import Cpa
from gateway.receipts.apprec import AppRecVersion
from gateway.security import cms_signed
from gateway.security.certificates import describe
from gateway.security.signatures import has_signature, verify_ebxml_envelope, verify_msghead
from gateway.security.signer_certificates import key_info_certificate
from gateway.validation.safe_xml import parse_xml

__all__ = ["SIGNING_TIME", "Pinning", "SignatureCheck", "verify_signatures"]

#: ``--at signing-time``: each signature at the moment its message says it was made.
SIGNING_TIME = "signing-time"
_DS_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"


@dataclass(frozen=True, slots=True)
class Pinning:
    """What a signature is checked against: a certificate, a CPA, or neither."""

    certificate: x509.Certificate | None = None
    cpa: Cpa | None = None


class Outcome(enum.Enum):
    VERIFIED = "verified"
    FAILED = "failed"
    UNSIGNED = "unsigned"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One signature of a file, as checked."""

    what: str  # "ebXML envelope" or "MsgHead"
    outcome: Outcome
    detail: str
    at: datetime | None = None
    signer: str | None = None
    pinned: bool = False

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

    def render(self) -> str:
        when = f" at {self.at.isoformat(timespec='seconds')}" if self.at else ""
        who = f"; signer {self.signer}" if self.signer else ""
        pinned = "" if self.outcome is not Outcome.VERIFIED or self.pinned else " (NOT pinned)"
        return f"{self.what} signature: {self.outcome.value}{pinned}{when}{who}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "signature": self.what,
            "outcome": self.outcome.value,
            "pinned": self.pinned,
            "at": self.at.isoformat() if self.at else None,
            "signer": self.signer,
            "detail": self.detail,
        }


def verify_signatures(
    data: bytes,
    *,
    pinning: Pinning,
    at: datetime | str | None,
    max_bytes: int,
    decrypt: Decrypt | None = None,
    detached: bytes | None = None,
) -> list[SignatureCheck]:
    """Check every signature of the file ``data`` (see the module docstring); ``detached`` is
    the ``.p7s`` found beside it, if any."""
    try:
        unwrapped = unwrap(data, max_bytes=max_bytes)
    except MessageError as exc:
        return [SignatureCheck("file", Outcome.NOT_CHECKED, f"cannot be unpacked: {exc.detail}")]
    if isinstance(unwrapped, BareDocument):
        if _is_apprec(unwrapped.payload, max_bytes):
            return [_detached(unwrapped.payload, detached, pinning, at)]
        return [_msghead(unwrapped.payload, None, pinning, at, max_bytes)]
    return _ebxml(unwrapped, pinning, at, max_bytes, decrypt)


_APPREC_TAGS = frozenset(f"{{{version.namespace}}}AppRec" for version in AppRecVersion)


def _is_apprec(payload: bytes, max_bytes: int) -> bool:
    try:
        return parse_xml(payload, max_bytes=max_bytes).tag in _APPREC_TAGS
    except MessageError:
        return False


def _detached(
    data: bytes, signature: bytes | None, pinning: Pinning, at: datetime | str | None
) -> SignatureCheck:
    """A bare AppRec file against the detached CMS signature beside it."""
    what = "AppRec (detached .p7s)"
    if signature is None:
        return SignatureCheck(what, Outcome.UNSIGNED, "no .p7s beside the file")
    when = _apprec_time(data) if at == SIGNING_TIME else _moment(at)
    if pinning.cpa is not None:
        return SignatureCheck(
            what, Outcome.NOT_CHECKED, "an AppRec is ours: pin it with --cert, not --cpa", when
        )
    try:
        verified = cms_signed.verify(data, signature, pinning.certificate, at=when)
    except MessageError as exc:
        return SignatureCheck(
            what, Outcome.FAILED, exc.detail, when, None, pinning.certificate is not None
        )
    why = (
        "against the given certificate"
        if verified.pinned
        else "against the certificate the signature carries: the file is intact, but the "
        "signer is not pinned (give --cert)"
    )
    return SignatureCheck(
        what, Outcome.VERIFIED, why, when, describe(verified.signer), verified.pinned
    )


def _apprec_time(data: bytes) -> datetime:
    """The AppRec's GenDate (Norwegian local time), or now when it cannot be read."""
    root = parse_xml(data)
    text = root.findtext(f"{{{etree.QName(root).namespace}}}GenDate")
    try:
        generated = datetime.fromisoformat((text or "").strip())
    except ValueError:
        return datetime.now(UTC)
    return generated if generated.tzinfo is not None else generated.replace(tzinfo=OSLO)


def _ebxml(
    packaged: Packaged,
    pinning: Pinning,
    at: datetime | str | None,
    max_bytes: int,
    decrypt: Decrypt | None,
) -> list[SignatureCheck]:
    package = packaged.package
    try:
        message = parse_envelope(package.envelope.body)
    except EbxmlError as exc:
        return [SignatureCheck("ebXML envelope", Outcome.NOT_CHECKED, exc.detail)]
    checks = [_envelope(packaged, message, pinning, at)]
    try:
        payload = extract_payload(
            package, message, decrypt=decrypt, must_be_encrypted=False, max_bytes=max_bytes
        )
    except MessageError as exc:
        hint = "" if decrypt else " (give --config for the decryption keys)"
        checks.append(
            SignatureCheck("MsgHead", Outcome.NOT_CHECKED, f"payload: {exc.detail}{hint}")
        )
        return checks
    checks.append(_msghead(payload, message, pinning, at, max_bytes))
    return checks


def _envelope(
    packaged: Packaged, message: EbxmlMessage, pinning: Pinning, at: datetime | str | None
) -> SignatureCheck:
    what = "ebXML envelope"
    if not message.has_signature:
        return SignatureCheck(what, Outcome.UNSIGNED, "the envelope carries no ds:Signature")
    when = message.header.timestamp if at == SIGNING_TIME else _moment(at)
    from_her = message.header.from_party.id_of("HER")
    root = parse_xml(packaged.package.envelope.body)
    signature = next(root.iter(_DS_SIGNATURE))
    certificates, pinned, why = _certificates(pinning, signature, from_her, message)
    if not certificates:
        return SignatureCheck(what, Outcome.NOT_CHECKED, why, when)
    attachments = {p.content_id: p.body for p in packaged.package.attachments if p.content_id}
    try:
        verify_ebxml_envelope(packaged.package.envelope.body, attachments, certificates, when)
    except MessageError as exc:
        return SignatureCheck(what, Outcome.FAILED, exc.detail, when, _who(certificates), pinned)
    return SignatureCheck(what, Outcome.VERIFIED, why, when, _who(certificates), pinned)


def _msghead(
    payload: bytes,
    message: EbxmlMessage | None,
    pinning: Pinning,
    at: datetime | str | None,
    max_bytes: int,
) -> SignatureCheck:
    what = "MsgHead"
    try:
        root = parse_xml(payload, max_bytes=max_bytes)
    except MessageError as exc:
        return SignatureCheck(what, Outcome.NOT_CHECKED, exc.detail)
    if etree.QName(root).namespace != MSGHEAD_NS:
        return SignatureCheck(what, Outcome.NOT_CHECKED, "the document is not a MsgHead")
    if not has_signature(root):
        return SignatureCheck(what, Outcome.UNSIGNED, "the MsgHead carries no ds:Signature")
    when = _signing_time(root) if at == SIGNING_TIME else _moment(at)
    signature = next(root.iter(_DS_SIGNATURE))
    sender = _sender_her(root)
    certificates, pinned, why = _certificates(pinning, signature, sender, message)
    if not certificates:
        return SignatureCheck(what, Outcome.NOT_CHECKED, why, when)
    try:
        verify_msghead(root, certificates, when)
    except MessageError as exc:
        return SignatureCheck(what, Outcome.FAILED, exc.detail, when, _who(certificates), pinned)
    return SignatureCheck(what, Outcome.VERIFIED, why, when, _who(certificates), pinned)


def _certificates(
    pinning: Pinning,
    signature: etree._Element,
    sender_her: str | None,
    message: EbxmlMessage | None,
) -> tuple[tuple[x509.Certificate, ...], bool, str]:
    """(certificates, pinned, a note) for one signature."""
    if pinning.certificate is not None:
        return (pinning.certificate,), True, "against the given certificate"
    if pinning.cpa is not None:
        party = pinning.cpa.party_by_her(sender_her) if sender_her else None
        if party is None:
            return (), False, f"the CPA has no party with the sender's HER id {sender_her}"
        binding = None
        if message is not None:
            binding = party.can_send(message.header.service, message.header.action)
        found = party.signing_certificates(binding)
        if not found:
            return (), False, f"the CPA names no signing certificate for HER {sender_her}"
        return found, True, f"against HER {sender_her}'s certificate(s) in CPA {pinning.cpa.cpa_id}"
    carried = key_info_certificate(signature)
    if carried is None:
        return (), False, "the signature carries no certificate, and none was given"
    return (
        (carried,),
        False,
        "against the certificate the signature carries: the content is intact and signed with "
        "that key, but the signer is not pinned (give --cert or --cpa)",
    )


def _moment(at: datetime | str | None) -> datetime:
    if isinstance(at, datetime):
        return at
    return datetime.now(UTC)


def _signing_time(root: etree._Element) -> datetime:
    """The MsgHead's GenDate (Norwegian local time), or now when it cannot be read."""
    try:
        generated = parse_msghead(root).head.gen_date
    except ContentError:
        return datetime.now(UTC)
    if generated.tzinfo is None:
        generated = generated.replace(tzinfo=OSLO)
    return generated


def _sender_her(root: etree._Element) -> str | None:
    try:
        return parse_msghead(root).head.sender.her_id
    except ContentError:
        return None


def _who(certificates: Sequence[x509.Certificate]) -> str:
    return "; ".join(describe(certificate) for certificate in certificates)


def parse_at(text: str | None) -> datetime | str | None:
    """``--at``: ``signing-time``, or an ISO 8601 moment (Norwegian local time without a zone);
    ``ValueError`` for anything else."""
    if text is None or text == SIGNING_TIME:
        return text
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=OSLO)
