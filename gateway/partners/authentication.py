"""Is a received message from the partner its CPA names? Its signatures, checked against the
partner's certificates from the CPA (never against a certificate the message brings along).

The checks themselves are ``gateway.security.signatures``; this module picks the certificates
and applies the configured requirements. Each verifier returns what was signed: whatever is
processed from there on is that, nothing around it (signature wrapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from cryptography import x509
from lxml import etree

from gateway.claims.msghead import MSGHEAD_NS
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.mime import MimePackage
from gateway.ebxml.model import EbxmlMessage
from gateway.errors import SecurityFailure
from gateway.logs import get_logger
from gateway.partners.checks import Agreement
from gateway.partners.registry import PartnerRegistry
from gateway.security.signatures import verify_ebxml_envelope, verify_msghead

__all__ = ["signal_trusted", "verified_envelope", "verified_msghead"]

log = get_logger("partners.authentication")


def verified_envelope(
    package: MimePackage,
    message: EbxmlMessage,
    agreement: Agreement | None,
    at: datetime,
    required: bool,
) -> EbxmlMessage:
    """The ebXML signature (``SOAP:Header``) against the sender's signing certificate from its
    CPA, at ``at``; returns the header that was signed. Without a CPA there is nothing to check
    against, and ``message`` comes back as it is. ``required``: an unsigned envelope is refused."""
    if agreement is None:
        return message
    certificates = _signing_certificates(agreement, required, "og signatur er påkrevd")
    if not certificates:
        return message
    signed = verify_ebxml_envelope(
        package.envelope.body, _attachments(package), certificates, at, required=required
    )
    return parse_envelope(etree.tostring(signed))


def verified_msghead(
    root: etree._Element, agreement: Agreement | None, at: datetime, required: bool
) -> etree._Element:
    """The MsgHead's enveloped signature against the sender's certificate from its CPA; returns
    the element that was signed. A document that is not a MsgHead comes back as it is (the
    schema stage answers it), as does any document without a CPA to check against."""
    if agreement is None or etree.QName(root).namespace != MSGHEAD_NS:
        return root
    why = "så signaturen på MsgHead kan ikke kontrolleres"
    certificates = _signing_certificates(agreement, required, why)
    if not certificates:
        return root
    return verify_msghead(root, certificates, at, required=required)


def signal_trusted(
    package: MimePackage,
    message: EbxmlMessage,
    partners: PartnerRegistry | None,
    our_her: str,
    at: datetime,
    require_signed: bool,
) -> bool:
    """Whether a signal may settle one of our messages: with partners configured, it must come
    from the other party of a CPA in force, signed by it where signatures are known. An
    untrusted signal is kept (received row) but matches nothing; signals are never answered, so
    there is nobody to tell."""
    if partners is None:
        return True
    header = message.header
    cpa = partners.by_cpa_id(header.cpa_id)
    from_her = header.from_party.id_of("HER")
    partner = cpa.party_by_her(from_her) if cpa is not None and from_her else None
    if (
        cpa is None
        or partner is None
        or partner.her_id == our_her
        or cpa.party_by_her(our_her) is None
        or not cpa.in_force(at)
    ):
        log.warning("signal_untrusted", reason="no CPA with this sender", cpa_id=header.cpa_id)
        return False
    certificates = partner.signing_certificates()
    if not certificates:
        return not require_signed
    try:
        verify_ebxml_envelope(
            package.envelope.body, _attachments(package), certificates, at, required=require_signed
        )
    except SecurityFailure as exc:
        log.warning("signal_untrusted", reason=exc.detail, cpa_id=header.cpa_id)
        return False
    return True


def _signing_certificates(
    agreement: Agreement, required: bool, consequence: str
) -> tuple[x509.Certificate, ...]:
    """The partner's signing certificates on the channel it sent by (old and new during a
    rollover); ``SecurityFailure`` if it has none and a signature is ``required``."""
    certificates = tuple(agreement.partner.signing_certificates(agreement.sent_as))
    if not certificates and required:
        raise SecurityFailure(
            f"CPA-en har ikke noe signeringssertifikat for avsenderen, {consequence}.",
            location="//eb:CPAId",
        )
    return certificates


def _attachments(package: MimePackage) -> Mapping[str, bytes]:
    return {p.content_id: p.body for p in package.attachments if p.content_id}
