"""Is a received message from the partner its CPA names? Its signatures, checked against the
partner's certificates from the CPA (never against a certificate the message brings along).

The checks themselves are ``gateway.security.signatures``; this module picks the certificates
and applies the configured requirements. Each verifier returns what was signed: whatever is
processed from there on is that, nothing around it (signature wrapping). With a revocation
check (``gateway.security.revocation``), the certificate that verified must not be revoked.

With partners configured, every claim has a partner, whatever its wrapping: an ebXML message
is accepted under the CPA its header names (``gateway.partners.addressing``), and a MsgHead that
came without ebXML (a file in the spool, a bare XML mail) under the CPA of its MsgHead sender
(``sender_agreement``); a sender without one is ``UnknownSender``, nothing it sends approved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from lxml import etree

from gateway.claims.message_types import document_type
from gateway.claims.msghead import MSGHEAD_NS, parse_msghead
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.mime import MimePackage
from gateway.ebxml.model import EbxmlMessage
from gateway.errors import SecurityFailure, UnknownSender
from gateway.logs import get_logger
from gateway.partners.checks import Agreement, check_parties
from gateway.partners.cpa import CpaParty
from gateway.partners.registry import PartnerNotFound, PartnerRegistry
from gateway.security.certificates import RevocationCheck
from gateway.security.signatures import verify_ebxml_envelope, verify_msghead

__all__ = [
    "VerifiedEnvelope",
    "msh_request_partner",
    "sender_agreement",
    "signal_trusted",
    "verified_envelope",
    "verified_msghead",
]

log = get_logger("partners.authentication")


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    """An ebXML message after its signature check."""

    message: EbxmlMessage
    """The header as it was signed (as received when nothing was checked)."""
    checked: bool
    """Checked against the partner's certificates: a signature it carries verified, so its
    references may be acknowledged (a signed acknowledgment, ebMS 2.0 §6.3.2.5)."""


def verified_envelope(
    package: MimePackage,
    message: EbxmlMessage,
    agreement: Agreement | None,
    at: datetime,
    required: bool,
    *,
    revocation: RevocationCheck | None = None,
) -> VerifiedEnvelope:
    """The ebXML signature (``SOAP:Header``) against the sender's signing certificate from its
    CPA, at ``at``; returns the header that was signed. Without a CPA there is nothing to check
    against, and ``message`` comes back as it is. ``required``: an unsigned envelope is refused."""
    if agreement is None:
        return VerifiedEnvelope(message, checked=False)
    certificates = _signing_certificates(agreement.partner, agreement, required)
    if not certificates:
        return VerifiedEnvelope(message, checked=False)
    signed = verify_ebxml_envelope(
        package.envelope.body,
        _attachments(package),
        certificates,
        at,
        required=required,
        revocation=revocation,
    )
    return VerifiedEnvelope(parse_envelope(etree.tostring(signed)), checked=True)


def verified_msghead(
    root: etree._Element,
    agreement: Agreement | None,
    at: datetime,
    required: bool,
    *,
    revocation: RevocationCheck | None = None,
) -> etree._Element:
    """The MsgHead's enveloped signature against the sender's certificate from its CPA; returns
    the element that was signed. A document that is not a MsgHead comes back as it is (the
    schema stage answers it), as does any document without a CPA to check against."""
    if agreement is None or etree.QName(root).namespace != MSGHEAD_NS:
        return root
    certificates = _signing_certificates(
        agreement.partner,
        agreement,
        required,
        "så signaturen på MsgHead kan ikke kontrolleres",
    )
    if not certificates:
        return root
    return verify_msghead(root, certificates, at, required=required, revocation=revocation)


def sender_agreement(
    root: etree._Element, partners: PartnerRegistry, our_her: str, at: datetime
) -> Agreement | None:
    """For a MsgHead that came without ebXML: the CPA between us and its MsgHead sender (found
    by the sender's HER id), in force at ``at``, that lets it send this message type.

    None for a document that is not a MsgHead (nothing in it can be approved; the type check
    answers it). ``UnknownSender`` for a sender without such a CPA; the message-type and MsgHead
    readers' own errors (T10, T02) for a document that cannot say who sent it.
    """
    if etree.QName(root).namespace != MSGHEAD_NS:
        return None
    message_type = document_type(root, None)
    sender = parse_msghead(root).head.sender
    her = sender.her_id
    if not her:
        raise UnknownSender(
            "MsgHead oppgir ikke avsenderens HER-id, så avsenderen kan ikke identifiseres.",
            location="/MsgHead/MsgInfo/Sender/Organisation/Ident",
        )
    try:
        cpa, us, partner = partners.partner(our_her, her, at=at)
    except PartnerNotFound as exc:
        log.warning("unknown_sender", sender_her=her, reason=str(exc))
        raise UnknownSender(
            f"Avsenderen (HER-id {her}) har ingen gyldig avtale (CPA) med mottakeren; "
            "meldingen kan ikke autentiseres og behandles ikke.",
            location="/MsgHead/MsgInfo/Sender/Organisation/Ident",
        ) from exc
    sent_as = partner.can_send(message_type.service, message_type.action)
    received_as = us.can_receive(message_type.service, message_type.action)
    if sent_as is None or received_as is None:
        raise UnknownSender(
            f"CPA {cpa.cpa_id!r} gir ikke HER-id {her} lov til å sende "
            f"{message_type.service}/{message_type.action} til mottakeren.",
            location="/MsgHead/MsgInfo/Sender/Organisation/Ident",
        )
    return Agreement(cpa=cpa, us=us, partner=partner, sent_as=sent_as, received_as=received_as)


def msh_request_partner(
    package: MimePackage,
    message: EbxmlMessage,
    partners: PartnerRegistry,
    our_her: str,
    at: datetime,
    required: bool,
    *,
    revocation: RevocationCheck | None = None,
) -> tuple[CpaParty, bytes]:
    """The partner a Ping or StatusRequest comes from, and its envelope as signed: the other
    party of the CPA its header names (in force, addressed to us), the signature checked against
    that party's default MSH channel certificates. Raises the ebXML errors ``check_parties`` and
    the signature check raise (answered with a MessageError)."""
    _, _, partner = check_parties(message.header, partners, our_her, at=at)
    envelope = package.envelope.body
    certificates = _signing_certificates(partner, None, required)
    if certificates:
        signed = verify_ebxml_envelope(
            envelope,
            _attachments(package),
            certificates,
            at,
            required=required,
            revocation=revocation,
        )
        envelope = etree.tostring(signed)
    return partner, envelope


def signal_trusted(
    package: MimePackage,
    message: EbxmlMessage,
    partners: PartnerRegistry | None,
    our_her: str,
    at: datetime,
    require_signed: bool,
    *,
    revocation: RevocationCheck | None = None,
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
            package.envelope.body,
            _attachments(package),
            certificates,
            at,
            required=require_signed,
            revocation=revocation,
        )
    except SecurityFailure as exc:
        log.warning("signal_untrusted", reason=exc.detail, cpa_id=header.cpa_id)
        return False
    return True


def _signing_certificates(
    partner: CpaParty,
    agreement: Agreement | None,
    required: bool,
    consequence: str = "og signatur er påkrevd",
) -> tuple[x509.Certificate, ...]:
    """The partner's signing certificates on the channel it sent by (its default MSH channel
    without an agreement; old and new during a rollover); ``SecurityFailure`` if it has none
    and a signature is ``required``."""
    binding = agreement.sent_as if agreement is not None else None
    certificates = tuple(partner.signing_certificates(binding))
    if not certificates and required:
        raise SecurityFailure(
            f"CPA-en har ikke noe signeringssertifikat for avsenderen, {consequence}.",
            location="//eb:CPAId",
        )
    return certificates


def _attachments(package: MimePackage) -> Mapping[str, bytes]:
    return {p.content_id: p.body for p in package.attachments if p.content_id}
