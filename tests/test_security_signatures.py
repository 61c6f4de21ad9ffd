"""XML signatures: the MsgHead's enveloped signature and the ebMS 2.0 signature in SOAP:Header.

Round trips, tampering, the wrong or an unusable certificate, signature-wrapping attempts, and
the real signed sample message (verified with the certificate it carries, at the time it was
sent).
"""

from __future__ import annotations

import base64
import copy
import gzip
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree
from signxml.algorithms import SignatureConstructionMethod
from signxml.signer import XMLSigner

from gateway.ebxml.compose import build_envelope, serialize
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.mime import unwrap
from gateway.ebxml.model import ManifestReference, MessageHeader, Party, PartyId
from gateway.ebxml.namespaces import (
    ACTOR_NEXT_MSH,
    ACTOR_TO_PARTY_MSH,
    DS_NS,
    EB_NS,
    MSGHEAD_NS,
    SOAP_ACTOR_NEXT,
    SOAP_NS,
)
from gateway.ebxml.signals import build_acknowledgment, build_message_error, error_detail_for
from gateway.errors import CertificateInvalid, NotXml, SecurityFailure, SignatureInvalid
from gateway.security.certificates import load_certificate
from gateway.security.cms import encrypt, gunzip
from gateway.security.signatures import (
    EBMS_XPATH,
    has_signature,
    sign_ebxml_envelope,
    verify_ebxml_envelope,
    verify_msghead,
)
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.validation.safe_xml import parse_xml
from tests.support.pki import TestCa, TestPki, Usage

NOW = datetime.now(UTC)
DS = f"{{{DS_NS}}}"
MH = f"{{{MSGHEAD_NS}}}"
EB = f"{{{EB_NS}}}"
SOAP = f"{{{SOAP_NS}}}"
SAMPLE = "ebxml-ebms2/samples/2023_08_29T12_56_58_328"
SAMPLE_SENT = datetime(2023, 8, 29, 10, 56, 50, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create()


@pytest.fixture(scope="module")
def msghead() -> bytes:
    """An unsigned, realistic MsgHead with a BehandlerKrav."""
    head, krav = make_claim(
        rng=random.Random(7),
        practitioner="lege",
        bills=2,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 1, 9, 0),
    )
    return msghead_with_bkm(head, krav)


@pytest.fixture(scope="module")
def signed_msghead(pki: TestPki, msghead: bytes) -> bytes:
    return serialize(pki.partner.signer().sign(parse_xml(msghead)))


def msg_id(root: etree._Element) -> str:
    return root.findtext(f"{MH}MsgInfo/{MH}MsgId") or ""


def with_msg_id(document: bytes, new_id: str) -> etree._Element:
    root = parse_xml(document)
    element = root.find(f"{MH}MsgInfo/{MH}MsgId")
    assert element is not None
    element.text = new_id
    return root


# --- MsgHead: round trip ------------------------------------------------------------------------


def test_a_signed_msghead_verifies_and_comes_back_as_signed(
    pki: TestPki, msghead: bytes, signed_msghead: bytes
) -> None:
    signed = verify_msghead(signed_msghead, pki.partner.certificate, NOW)
    assert signed.tag == f"{MH}MsgHead"
    assert not has_signature(signed)
    original = parse_xml(msghead)
    assert etree.tostring(signed, method="c14n") == etree.tostring(original, method="c14n")
    # A parsed tree works as well as bytes.
    again = verify_msghead(parse_xml(signed_msghead), pki.partner.certificate, NOW)
    assert msg_id(again) == msg_id(original)


def test_what_comes_back_is_the_canonical_signed_tree(pki: TestPki, signed_msghead: bytes) -> None:
    # A comment inside a value is not signed (C14N without comments), so it is accepted, but
    # what is returned is what was digested: the value whole, and no comment.
    original_id = msg_id(parse_xml(signed_msghead))
    head, tail = original_id[:4], original_id[4:]
    doctored = signed_msghead.replace(
        f"<MsgId>{original_id}</MsgId>".encode(), f"<MsgId>{head}<!--x-->{tail}</MsgId>".encode()
    )
    assert doctored != signed_msghead
    signed = verify_msghead(doctored, pki.partner.certificate, NOW)
    assert msg_id(signed) == original_id
    assert not list(signed.iter(etree.Comment))


# --- MsgHead: what is refused --------------------------------------------------------------------


def test_a_tampered_msghead_is_refused(pki: TestPki, signed_msghead: bytes) -> None:
    tampered = serialize(with_msg_id(signed_msghead, "another-id"))
    with pytest.raises(SignatureInvalid, match="endret etter"):
        verify_msghead(tampered, pki.partner.certificate, NOW)


def test_a_signature_by_someone_else_is_refused(pki: TestPki, signed_msghead: bytes) -> None:
    # Verified against the certificate we expect, not the one the message carries.
    with pytest.raises(SignatureInvalid, match="signert med") as caught:
        verify_msghead(signed_msghead, pki.gateway.certificate, NOW)
    assert "Testlegen" in caught.value.detail


def test_a_lookalike_certificate_from_another_ca_is_refused(pki: TestPki, msghead: bytes) -> None:
    # Same subject as the partner, but another CA and another key.
    impostor = TestCa.create("Evil CA").issue(
        "Testlegen", key_name="impostor", her_id="8141253", organisation="Testpraksis AS"
    )
    forged = serialize(impostor.signer().sign(parse_xml(msghead)))
    with pytest.raises(SignatureInvalid, match="stemmer ikke"):
        verify_msghead(forged, pki.partner.certificate, NOW)


def test_an_expired_certificate_is_s02(pki: TestPki, signed_msghead: bytes) -> None:
    expired = pki.ca.issue(
        "Testlegen",
        key_name="partner",
        not_before=NOW - timedelta(days=400),
        not_after=NOW - timedelta(days=1),
    )
    with pytest.raises(CertificateInvalid, match="utløpt"):
        verify_msghead(signed_msghead, expired.certificate, NOW)
    # The same signature at a moment the certificate was valid is fine.
    verify_msghead(signed_msghead, expired.certificate, NOW - timedelta(days=2))


def test_expired_and_tampered_is_s01_the_integrity_first(
    pki: TestPki, signed_msghead: bytes
) -> None:
    # Issue 11: the digest is checked before the certificate's dates, so the sender learns that
    # the content was changed, not only that its certificate has run out.
    expired = pki.ca.issue(
        "Testlegen",
        key_name="partner",
        not_before=NOW - timedelta(days=400),
        not_after=NOW - timedelta(days=1),
    )
    tampered = serialize(with_msg_id(signed_msghead, "another-id"))
    with pytest.raises(SignatureInvalid, match="endret etter") as caught:
        verify_msghead(tampered, expired.certificate, NOW)
    assert not isinstance(caught.value, CertificateInvalid)
    # Not yet valid and tampered: the same.
    future = pki.ca.issue(
        "Testlegen",
        key_name="partner",
        not_before=NOW + timedelta(days=1),
        not_after=NOW + timedelta(days=400),
    )
    with pytest.raises(SignatureInvalid, match="endret etter"):
        verify_msghead(tampered, future.certificate, NOW)
    with pytest.raises(CertificateInvalid, match=r"ikke gyldig|utløpt"):
        verify_msghead(signed_msghead, future.certificate, NOW)


def test_ebxml_expired_and_tampered_names_the_tampering(
    pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    tampered = signed_envelope.replace(b"OppgjorsMelding", b"Annullering")
    with pytest.raises(SecurityFailure, match="endret etter"):
        verify_ebxml_envelope(tampered, parts, pki.partner.certificate, NOW.replace(year=2100))


def test_a_certificate_not_for_signing_is_s02(pki: TestPki, signed_msghead: bytes) -> None:
    encryption_only = pki.ca.issue("Testlegen", key_name="partner", usage=Usage.ENCRYPTION)
    with pytest.raises(CertificateInvalid, match="ikke til signering"):
        verify_msghead(signed_msghead, encryption_only.certificate, NOW)


def test_an_unsigned_msghead_is_refused_only_when_required(pki: TestPki, msghead: bytes) -> None:
    with pytest.raises(SignatureInvalid, match="ikke signert"):
        verify_msghead(msghead, pki.partner.certificate, NOW)
    root = verify_msghead(msghead, pki.partner.certificate, NOW, required=False)
    assert msg_id(root) == msg_id(parse_xml(msghead))


def test_not_a_msghead_or_not_xml(pki: TestPki) -> None:
    other = pki.partner.signer().sign(etree.fromstring(b"<Other><A>1</A></Other>"))
    with pytest.raises(SignatureInvalid, match="ikke en MsgHead"):
        verify_msghead(serialize(other), pki.partner.certificate, NOW)
    with pytest.raises(NotXml):
        verify_msghead(b"<MsgHead", pki.partner.certificate, NOW)


# --- MsgHead: signature wrapping ------------------------------------------------------------------


def test_wrapping_the_signed_original_in_a_ds_object_is_refused(
    pki: TestPki, signed_msghead: bytes
) -> None:
    evil = with_msg_id(signed_msghead, "evil-id")
    signature = evil.find(f"{DS}Signature")
    assert signature is not None
    hidden = etree.SubElement(signature, f"{DS}Object")
    hidden.append(parse_xml(signed_msghead))
    with pytest.raises(SignatureInvalid):
        verify_msghead(serialize(evil), pki.partner.certificate, NOW)


def test_a_signed_msghead_nested_in_another_is_refused(
    pki: TestPki, msghead: bytes, signed_msghead: bytes
) -> None:
    # The signed original hidden inside an unsigned MsgHead that would be processed instead.
    evil = with_msg_id(msghead, "evil-id")
    content = next(evil.iter(f"{MH}Content"))
    content.append(parse_xml(signed_msghead))
    with pytest.raises(SignatureInvalid, match="nøyaktig én ds:Signature"):
        verify_msghead(serialize(evil), pki.partner.certificate, NOW)
    # ... and with the original's signature copied to the evil root as well.
    evil.append(copy.deepcopy(parse_xml(signed_msghead)[-1]))
    with pytest.raises(SignatureInvalid, match="nøyaktig én ds:Signature"):
        verify_msghead(serialize(evil), pki.partner.certificate, NOW)


def test_a_second_signature_or_a_misplaced_one_is_refused(
    pki: TestPki, signed_msghead: bytes
) -> None:
    doubled = parse_xml(signed_msghead)
    doubled.append(copy.deepcopy(doubled[-1]))
    with pytest.raises(SignatureInvalid, match="nøyaktig én"):
        verify_msghead(serialize(doubled), pki.partner.certificate, NOW)
    moved = parse_xml(signed_msghead)
    moved.insert(0, moved[-1])  # first instead of last
    with pytest.raises(SignatureInvalid, match="siste element"):
        verify_msghead(serialize(moved), pki.partner.certificate, NOW)


def test_a_reference_to_part_of_the_document_is_refused(pki: TestPki, msghead: bytes) -> None:
    root = parse_xml(msghead)
    info = root.find(f"{MH}MsgInfo")
    assert info is not None
    info.set("Id", "only-this")
    partial = XMLSigner(method=SignatureConstructionMethod.enveloped).sign(
        root,
        key=pki.partner.key,
        cert=[pki.partner.certificate],
        reference_uri="#only-this",
    )
    assert partial[-1].tag == f"{DS}Signature"
    with pytest.raises(SignatureInvalid, match="hele dokumentet"):
        verify_msghead(serialize(partial), pki.partner.certificate, NOW)


def test_an_unknown_transform_is_refused(pki: TestPki, signed_msghead: bytes) -> None:
    root = parse_xml(signed_msghead)
    transforms = root.find(f"{DS}Signature/{DS}SignedInfo/{DS}Reference/{DS}Transforms")
    assert transforms is not None
    xslt = etree.SubElement(transforms, f"{DS}Transform")
    xslt.set("Algorithm", "http://www.w3.org/TR/1999/REC-xslt-19991116")
    with pytest.raises(SignatureInvalid, match="transformasjon som ikke støttes"):
        verify_msghead(serialize(root), pki.partner.certificate, NOW)


# --- ebXML envelope -------------------------------------------------------------------------------


def envelope_with(parts: Mapping[str, bytes]) -> bytes:
    header = MessageHeader(
        from_party=Party((PartyId("8141253", "HER"),), "Behandler"),
        to_party=Party((PartyId("79768", "HER"),), "KontrollUtbetaler"),
        cpa_id="nav:qass:35065",
        conversation_id="conversation-1",
        service="BehandlerKrav",
        service_type="string",
        action="OppgjorsMelding",
        message_id="message-1",
        timestamp=NOW,
    )
    manifest = [ManifestReference(f"cid:{cid}", cid) for cid in parts]
    return build_envelope(header, manifest=manifest, ack_requested=True, ack_signed=True)


@pytest.fixture(scope="module")
def parts(pki: TestPki, signed_msghead: bytes) -> dict[str, bytes]:
    """One encrypted payload part, as a real sender attaches it."""
    return {
        "payload-1@sender.test": encrypt(gzip.compress(signed_msghead), pki.gateway.certificate)
    }


@pytest.fixture(scope="module")
def signed_envelope(pki: TestPki, parts: dict[str, bytes]) -> bytes:
    return serialize(sign_ebxml_envelope(envelope_with(parts), pki.partner.signer(), parts))


def test_an_ebxml_signature_round_trip(
    pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    signed = verify_ebxml_envelope(signed_envelope, parts, pki.partner.certificate, NOW)
    assert signed.tag == f"{SOAP}Envelope"
    assert not has_signature(signed)
    message = parse_envelope(etree.tostring(signed))
    assert message.header.message_id == "message-1"
    assert message.ack_signed
    assert parse_envelope(signed_envelope).has_signature
    # Content-IDs may come with angle brackets or as cid: URLs.
    for key in ("<payload-1@sender.test>", "cid:payload-1%40sender.test"):
        verify_ebxml_envelope(
            signed_envelope, {key: parts["payload-1@sender.test"]}, pki.partner.certificate, NOW
        )


def test_several_parts_and_none(pki: TestPki) -> None:
    many = {"a@x": b"first part", "b@x": b"second part", "c@x": b""}
    signed = serialize(sign_ebxml_envelope(envelope_with(many), pki.partner.signer(), many))
    verify_ebxml_envelope(signed, many, pki.partner.certificate, NOW)
    swapped = {"a@x": b"second part", "b@x": b"first part", "c@x": b""}
    with pytest.raises(SecurityFailure, match="endret etter"):
        verify_ebxml_envelope(signed, swapped, pki.partner.certificate, NOW)
    bare = serialize(sign_ebxml_envelope(envelope_with({}), pki.partner.signer(), {}))
    verify_ebxml_envelope(bare, {}, pki.partner.certificate, NOW)


def test_a_tampered_payload_part_is_refused(
    pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    ((cid, body),) = parts.items()
    tampered = bytearray(body)
    tampered[-1] ^= 0x01
    with pytest.raises(SecurityFailure, match="endret etter"):
        verify_ebxml_envelope(signed_envelope, {cid: bytes(tampered)}, pki.partner.certificate, NOW)


def test_a_tampered_header_is_refused(
    pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    tampered = signed_envelope.replace(b"OppgjorsMelding", b"Annullering")
    with pytest.raises(SecurityFailure, match="endret etter"):
        verify_ebxml_envelope(tampered, parts, pki.partner.certificate, NOW)


def test_parts_must_match_the_references(
    pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    with pytest.raises(SecurityFailure, match="ikke finnes"):
        verify_ebxml_envelope(signed_envelope, {}, pki.partner.certificate, NOW)
    unsigned_extra = {**parts, "extra@sender.test": b"not signed"}
    with pytest.raises(SecurityFailure, match="ikke dekket av signaturen"):
        verify_ebxml_envelope(signed_envelope, unsigned_extra, pki.partner.certificate, NOW)


def test_ebxml_certificate_problems_are_security_failures(
    pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    with pytest.raises(SecurityFailure, match="signert med"):
        verify_ebxml_envelope(signed_envelope, parts, pki.gateway.certificate, NOW)
    with pytest.raises(SecurityFailure, match="utløpt"):
        verify_ebxml_envelope(
            signed_envelope, parts, pki.partner.certificate, NOW.replace(year=2100)
        )
    encryption_only = pki.ca.issue("Testlegen", key_name="partner", usage=Usage.ENCRYPTION)
    with pytest.raises(SecurityFailure, match="ikke til signering"):
        verify_ebxml_envelope(signed_envelope, parts, encryption_only.certificate, NOW)


def add_block(envelope: bytes, actor: str, *, tail: str | None = None) -> bytes:
    """``envelope`` with an ``eb:SyncReply`` for ``actor`` right after the MessageHeader."""
    root = parse_xml(envelope)
    header = root.find(f"{SOAP}Header")
    assert header is not None
    block = etree.Element(f"{EB}SyncReply")
    block.set(f"{SOAP}actor", actor)
    block.set(f"{EB}version", "2.0")
    block.tail = tail
    header.insert(1, block)
    return serialize(root)


def test_header_blocks_for_the_next_msh_are_not_signed_and_not_returned(
    pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    # An intermediary may add (or drop) blocks addressed to the next MSH: the XPath transform
    # leaves them out of the signature, and out of what we return.
    for actor in (ACTOR_NEXT_MSH, SOAP_ACTOR_NEXT):
        added = add_block(signed_envelope, actor)
        signed = verify_ebxml_envelope(added, parts, pki.partner.certificate, NOW)
        assert signed.find(f".//{EB}SyncReply") is None
    with pytest.raises(SecurityFailure, match="endret etter"):
        verify_ebxml_envelope(
            add_block(signed_envelope, ACTOR_TO_PARTY_MSH), parts, pki.partner.certificate, NOW
        )
    # The text after such a block is signed, though (it is not inside the block).
    with pytest.raises(SecurityFailure, match="endret etter"):
        verify_ebxml_envelope(
            add_block(signed_envelope, ACTOR_NEXT_MSH, tail="\n"),
            parts,
            pki.partner.certificate,
            NOW,
        )


def test_a_next_msh_block_present_when_signing_may_change_on_the_way(
    pki: TestPki, parts: dict[str, bytes]
) -> None:
    with_block = add_block(envelope_with(parts), ACTOR_NEXT_MSH, tail="\n")
    signed = serialize(sign_ebxml_envelope(with_block, pki.partner.signer(), parts))
    verify_ebxml_envelope(signed, parts, pki.partner.certificate, NOW)
    changed = signed.replace(b'eb:version="2.0"/>', b'eb:version="2.0" eb:changed="yes"/>', 1)
    assert changed != signed
    verified = verify_ebxml_envelope(changed, parts, pki.partner.certificate, NOW)
    assert verified.find(f".//{EB}SyncReply") is None


def test_another_xpath_is_refused(
    pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    root = parse_xml(signed_envelope)
    xpath = root.find(f".//{DS}XPath")
    assert xpath is not None
    xpath.text = "true()"
    with pytest.raises(SecurityFailure, match="transformasjon som ikke støttes"):
        verify_ebxml_envelope(serialize(root), parts, pki.partner.certificate, NOW)


def test_a_signature_outside_the_header_is_refused(
    pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    root = parse_xml(signed_envelope)
    signature = root.find(f"{SOAP}Header/{DS}Signature")
    body = root.find(f"{SOAP}Body")
    assert signature is not None and body is not None
    body.append(signature)
    with pytest.raises(SecurityFailure, match="i SOAP:Header"):
        verify_ebxml_envelope(serialize(root), parts, pki.partner.certificate, NOW)


def test_an_unsigned_envelope_is_refused_only_when_required(
    pki: TestPki, parts: dict[str, bytes]
) -> None:
    unsigned = envelope_with(parts)
    with pytest.raises(SecurityFailure, match="ikke signert"):
        verify_ebxml_envelope(unsigned, parts, pki.partner.certificate, NOW)
    root = verify_ebxml_envelope(unsigned, parts, pki.partner.certificate, NOW, required=False)
    assert root.tag == f"{SOAP}Envelope"
    with pytest.raises(SecurityFailure, match="kan ikke kontrolleres"):
        verify_ebxml_envelope(b"<not-xml", parts, pki.partner.certificate, NOW)


def test_signing_leaves_the_input_alone_and_refuses_to_sign_twice(pki: TestPki) -> None:
    root = parse_xml(envelope_with({}))
    signed = sign_ebxml_envelope(root, pki.gateway.signer(), {})
    assert not has_signature(root)
    assert has_signature(signed)
    header = signed.find(f"{SOAP}Header")
    assert header is not None and header[-1].tag == f"{DS}Signature"
    with pytest.raises(ValueError, match="signed already"):
        sign_ebxml_envelope(signed, pki.gateway.signer(), {})
    with pytest.raises(ValueError, match="not a SOAP envelope"):
        sign_ebxml_envelope(etree.fromstring(b"<x/>"), pki.gateway.signer(), {})


def test_our_signed_signals_verify_with_our_certificate(
    pki: TestPki, signed_envelope: bytes
) -> None:
    incoming = parse_envelope(signed_envelope).header
    ack = build_acknowledgment(incoming, message_id="ack-1", timestamp=NOW)
    error = build_message_error(
        incoming,
        [error_detail_for(SecurityFailure("Signaturen er ugyldig."))],
        message_id="error-1",
        timestamp=NOW,
        our_party=incoming.to_party,
        their_party=None,
    )
    for signal in (ack, error):
        signed = serialize(sign_ebxml_envelope(signal, pki.gateway.signer(), {}))
        verified = verify_ebxml_envelope(signed, {}, pki.gateway.certificate, NOW)
        assert parse_envelope(etree.tostring(verified)).header.ref_to_message_id == "message-1"
        assert parse_envelope(signed).has_signature


# --- the real sample ------------------------------------------------------------------------------


def sample(standards: Path) -> tuple[bytes, dict[str, bytes], x509.Certificate]:
    package = unwrap((standards / f"{SAMPLE}.msg").read_bytes())
    envelope = package.envelope.body
    found = etree.fromstring(envelope).findtext(f".//{DS}X509Certificate")
    assert found is not None
    attachments = {part.content_id or "": part.body for part in package.attachments}
    return envelope, attachments, load_certificate(found.encode())


def algorithm(parent: etree._Element, child: str) -> str:
    element = parent.find(f"{DS}{child}")
    assert element is not None, child
    return element.get("Algorithm") or ""


def signature_shape(envelope: bytes) -> list[tuple[str, ...]]:
    """Algorithms of a SOAP-header signature, and per Reference its URI kind and transforms."""
    signature = parse_xml(envelope).find(f"{SOAP}Header/{DS}Signature")
    assert signature is not None
    info = signature.find(f"{DS}SignedInfo")
    assert info is not None
    shape: list[tuple[str, ...]] = [
        (algorithm(info, "CanonicalizationMethod"), algorithm(info, "SignatureMethod"))
    ]
    for reference in info.findall(f"{DS}Reference"):
        uri = reference.get("URI") or ""
        shape.append(
            (
                "cid:" if uri.startswith("cid:") else uri,
                *(
                    t.get("Algorithm") or ""
                    for t in reference.iterfind(f"{DS}Transforms/{DS}Transform")
                ),
                algorithm(reference, "DigestMethod"),
            )
        )
    xpath = signature.findtext(f".//{DS}XPath")
    shape.append((" ".join((xpath or "").split()),))
    shape.append(tuple(child.tag for child in signature.iterfind(f"{DS}KeyInfo/{DS}X509Data/*")))
    return shape


@pytest.mark.conformance
def test_the_real_envelope_signature_verifies(standards: Path) -> None:
    envelope, attachments, cert = sample(standards)
    assert parse_envelope(envelope).has_signature
    signed = verify_ebxml_envelope(envelope, attachments, cert, SAMPLE_SENT)
    message = parse_envelope(etree.tostring(signed))
    assert message.header.message_id == "7104acf8-21e9-4ee7-b894-d413a00a8881"
    assert message.manifest[0].content_id in attachments
    # Its payload part, altered by one bit, no longer does.
    ((cid, body),) = attachments.items()
    with pytest.raises(SecurityFailure, match="endret etter"):
        verify_ebxml_envelope(envelope, {cid: body[:-1] + bytes([body[-1] ^ 1])}, cert, SAMPLE_SENT)
    # Nor does it verify today: the sender's certificate expired in 2025.
    with pytest.raises(SecurityFailure, match="utløpt"):
        verify_ebxml_envelope(envelope, attachments, cert, NOW)


@pytest.mark.conformance
def test_our_envelope_signature_has_the_shape_of_the_real_one(
    standards: Path, pki: TestPki, parts: dict[str, bytes], signed_envelope: bytes
) -> None:
    envelope, _, _ = sample(standards)
    # The real one also has a ds:KeyValue; ours carries only the certificate.
    assert signature_shape(signed_envelope)[:-1] == signature_shape(envelope)[:-1]
    assert signature_shape(signed_envelope)[-1] == (f"{DS}X509Certificate",)
    assert signature_shape(envelope)[-2] == (" ".join(EBMS_XPATH.split()),)


@pytest.mark.conformance
def test_the_real_msghead_signature_verifies(standards: Path) -> None:
    _, _, cert = sample(standards)
    document = gunzip((standards / f"{SAMPLE}.p7m.deenveloped").read_bytes())
    signed = verify_msghead(document, cert, SAMPLE_SENT)
    assert signed.tag == f"{MH}MsgHead"
    assert not has_signature(signed)
    with pytest.raises(CertificateInvalid, match="utløpt"):
        verify_msghead(document, cert, NOW)
    # The KeyInfo certificate is the one in the SOAP header: one signing certificate for both.
    embedded = parse_xml(document).findtext(f".//{DS}X509Certificate")
    assert embedded is not None
    assert load_certificate(base64.b64decode(embedded)) == cert
