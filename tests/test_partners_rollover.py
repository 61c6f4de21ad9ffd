"""A partner's signing-certificate rollover: old and new certificate both verify, nothing else does.

The CPA may hold both (several ``ds:X509Certificate`` in the ``Certificate``'s ``KeyInfo``), or
the operator adds the new one as ``<HER id>.signing.pem`` in the partners directory. MsgHead and
ebXML envelope signatures by either verify; a third certificate is still S01/SecurityFailure.
"""

from __future__ import annotations

import base64
import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.ebxml.compose import build_envelope, serialize
from gateway.ebxml.model import ManifestReference, MessageHeader, Party, PartyId
from gateway.ebxml.namespaces import DS_NS
from gateway.errors import CertificateInvalid, SecurityFailure, SignatureInvalid
from gateway.partners.cpa import CPPA_NS, parse_cpa
from gateway.partners.registry import PartnerRegistry, PartnerRegistryError
from gateway.security.signatures import sign_ebxml_envelope, verify_ebxml_envelope, verify_msghead
from gateway.security.signer_certificates import Candidates
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.cpa import DEFAULT_PARTNER, DEFAULT_US, CpaSpec, cpa_xml, write_cpa
from gateway.validation.safe_xml import parse_xml
from tests.support.pki import Credentials, TestCa, TestPki

NOW = datetime.now(UTC)
US, PARTNER = DEFAULT_US.her_id, DEFAULT_PARTNER.her_id
SERVICE, ACTION = "BehandlerKrav", "OppgjorsMelding"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create(now=NOW)


@pytest.fixture(scope="module")
def old(pki: TestPki) -> Credentials:
    return pki.partner


@pytest.fixture(scope="module")
def new(pki: TestPki) -> Credentials:
    # Issued an hour ago: newer than the old one, which dates from yesterday.
    return pki.ca.issue(
        "Testlegen (ny)",
        key_name="partner-new",
        her_id=PARTNER,
        not_before=NOW - timedelta(hours=1),
        now=NOW,
    )


@pytest.fixture(scope="module")
def stranger() -> Credentials:
    return TestCa.create("Another CA").issue("Fremmed", key_name="stranger", now=NOW)


def spec(signing: x509.Certificate) -> CpaSpec:
    return CpaSpec(
        cpa_id="test:cpa:rollover",
        us=dataclasses.replace(DEFAULT_US, signing_certificate=signing),
        partner=dataclasses.replace(DEFAULT_PARTNER, signing_certificate=signing),
    )


def with_second_certificate(document: bytes, cert_id: str, *extra: x509.Certificate) -> bytes:
    """``document`` with ``extra`` added to the ``KeyInfo`` of ``Certificate[@certId]``: one in
    the same ``X509Data``, the others each in an ``X509Data`` of their own."""
    root = etree.fromstring(document)
    key_info = next(
        element.find(f"{{{DS_NS}}}KeyInfo")
        for element in root.iter(f"{{{CPPA_NS}}}Certificate")
        if element.get(f"{{{CPPA_NS}}}certId") == cert_id
    )
    assert key_info is not None
    for index, cert in enumerate(extra):
        data = key_info[0] if index == 0 else etree.SubElement(key_info, f"{{{DS_NS}}}X509Data")
        element = etree.SubElement(data, f"{{{DS_NS}}}X509Certificate")
        element.text = base64.b64encode(cert.public_bytes(Encoding.DER)).decode()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.fixture(scope="module")
def msghead() -> bytes:
    head, krav = make_claim(
        rng=random.Random(11),
        practitioner="lege",
        bills=1,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 1, 9, 0),
    )
    return msghead_with_bkm(head, krav)


def signed_msghead(msghead: bytes, by: Credentials) -> bytes:
    return serialize(by.signer().sign(parse_xml(msghead)))


def signed_envelope(by: Credentials) -> tuple[bytes, dict[str, bytes]]:
    header = MessageHeader(
        from_party=Party((PartyId(PARTNER, "HER"),), "Behandler"),
        to_party=Party((PartyId(US, "HER"),), "KontrollUtbetaler"),
        cpa_id="test:cpa:rollover",
        conversation_id="c-1",
        service="BehandlerKrav",
        service_type="string",
        action="OppgjorsMelding",
        message_id="m-1@test",
        timestamp=NOW,
    )
    parts = {"payload-1@test": b"<payload/>"}
    manifest = [ManifestReference("cid:payload-1@test", "payload-1@test")]
    envelope = build_envelope(header, manifest=manifest)
    return serialize(sign_ebxml_envelope(envelope, by.signer(), parts)), parts


# --- the CPA holds both --------------------------------------------------------------------------


def test_a_cpa_may_hold_the_old_and_the_new_signing_certificate(
    old: Credentials, new: Credentials, pki: TestPki
) -> None:
    # The CA certificate beside them is a chain, not a candidate.
    document = with_second_certificate(
        cpa_xml(spec(old.certificate)), "partner_cert_sign", new.certificate, pki.ca.certificate
    )
    cpa = parse_cpa(document)
    partner = cpa.party_by_her(PARTNER)
    assert partner is not None
    claim = partner.can_send(SERVICE, ACTION)
    assert partner.signing_certificates(claim) == (old.certificate, new.certificate)
    assert partner.signing_certificate(claim) == old.certificate  # the first, as before
    assert partner.certificates["partner_cert_sign"] == (old.certificate, new.certificate)


def test_old_and_new_certificate_both_verify_and_a_third_is_s01(
    old: Credentials, new: Credentials, stranger: Credentials, msghead: bytes, tmp_path: Path
) -> None:
    document = with_second_certificate(
        cpa_xml(spec(old.certificate)), "partner_cert_sign", new.certificate
    )
    (tmp_path / "rollover.xml").write_bytes(document)
    registry = PartnerRegistry.load(tmp_path)
    certificates = registry.signing_certificates(
        US, PARTNER, service=SERVICE, action=ACTION, at=NOW
    )
    assert certificates == (old.certificate, new.certificate)

    for signer in (old, new):
        signed = verify_msghead(signed_msghead(msghead, signer), certificates, NOW)
        assert signed.tag.endswith("MsgHead")
        envelope, parts = signed_envelope(signer)
        verify_ebxml_envelope(envelope, parts, certificates, NOW)

    with pytest.raises(SignatureInvalid, match="noen av avsenderens sertifikater") as caught:
        verify_msghead(signed_msghead(msghead, stranger), certificates, NOW)
    assert "Fremmed" in caught.value.detail
    envelope, parts = signed_envelope(stranger)
    with pytest.raises(SecurityFailure, match="stemmer ikke"):
        verify_ebxml_envelope(envelope, parts, certificates, NOW)


def test_a_tampered_message_is_refused_whichever_certificate_signed_it(
    old: Credentials, new: Credentials, msghead: bytes
) -> None:
    tampered = signed_msghead(msghead, new).replace(b"<MsgId>", b"<MsgId>x", 1)
    assert tampered != signed_msghead(msghead, new)
    with pytest.raises(SignatureInvalid, match="endret etter"):
        verify_msghead(tampered, (old.certificate, new.certificate), NOW)


def test_the_old_certificate_expired_the_new_still_verifies_and_the_old_is_s02(
    pki: TestPki, new: Credentials, msghead: bytes
) -> None:
    expired = pki.ca.issue(
        "Testlegen (gammel)",
        key_name="partner-expired",
        not_before=NOW - timedelta(days=400),
        not_after=NOW - timedelta(days=1),
    )
    both = (expired.certificate, new.certificate)
    verify_msghead(signed_msghead(msghead, new), both, NOW)
    # The sender used the expired one: that is what it is told (S02), not "wrong key".
    with pytest.raises(CertificateInvalid, match="utløpt"):
        verify_msghead(signed_msghead(msghead, expired), both, NOW)


def test_the_certificate_named_in_key_info_is_tried_first(
    old: Credentials, new: Credentials, stranger: Credentials, msghead: bytes
) -> None:
    signature = parse_xml(signed_msghead(msghead, new)).find(f"{{{DS_NS}}}Signature")
    assert signature is not None
    certs = (stranger.certificate, old.certificate, new.certificate)
    candidates = Candidates.of(signature, certs, NOW)
    assert candidates.used == new.certificate
    assert candidates.ordered == (new.certificate, stranger.certificate, old.certificate)
    # Same key, renewed certificate: it comes right after the exact one.
    renewed = TestCa.create().issue("Testlegen (fornyet)", key_name="partner-new", now=NOW)
    candidates = Candidates.of(signature, (old.certificate, renewed.certificate), NOW)
    assert candidates.ordered == (renewed.certificate, old.certificate)


def test_no_certificate_at_all_is_a_programming_error(msghead: bytes, new: Credentials) -> None:
    with pytest.raises(ValueError, match="no certificate"):
        verify_msghead(signed_msghead(msghead, new), (), NOW)


# --- the operator adds the new certificate -------------------------------------------------------


def test_a_rollover_file_adds_a_signing_certificate_for_its_partner(
    old: Credentials, new: Credentials, msghead: bytes, tmp_path: Path
) -> None:
    write_cpa(tmp_path, spec(old.certificate))
    (tmp_path / f"{PARTNER}.signing.pem").write_bytes(new.cert_pem)
    registry = PartnerRegistry.load(tmp_path)

    certificates = registry.signing_certificates(
        US, PARTNER, service=SERVICE, action=ACTION, at=NOW
    )
    assert certificates == (old.certificate, new.certificate)
    assert (
        registry.signing_certificate(US, PARTNER, service=SERVICE, action=ACTION) == old.certificate
    )
    verify_msghead(signed_msghead(msghead, new), certificates, NOW)
    # What the pipeline asks: the agreement's partner party.
    cpa, _, partner = registry.partner(US, PARTNER)
    assert partner.signing_certificates(partner.can_send(SERVICE, ACTION)) == certificates
    assert new.certificate in registry.partner_certificates(US)
    assert partner.rollover_certificates == (new.certificate,)
    # Our own party is untouched.
    assert cpa.party_by_her(US) is not None
    assert cpa.party_by_her(US).rollover_certificates == ()  # type: ignore[union-attr]


def test_rollover_files_that_cannot_be_used_are_problems_of_the_directory(
    old: Credentials, tmp_path: Path
) -> None:
    write_cpa(tmp_path, spec(old.certificate))
    (tmp_path / "999.signing.pem").write_bytes(old.cert_pem)
    (tmp_path / f"{PARTNER}.signing.pem").write_bytes(b"not a certificate")
    (tmp_path / "dr-hansen.signing.pem").write_bytes(old.cert_pem)
    with pytest.raises(PartnerRegistryError) as caught:
        PartnerRegistry.load(tmp_path)
    reasons = {problem.path.name: problem.reason for problem in caught.value.problems}
    assert set(reasons) == {"999.signing.pem", f"{PARTNER}.signing.pem", "dr-hansen.signing.pem"}
    assert "no CPA has HER id 999" in reasons["999.signing.pem"]
    assert "no PEM certificate" in reasons[f"{PARTNER}.signing.pem"]
    assert "<HER id>.signing.pem" in reasons["dr-hansen.signing.pem"]
    # SIGHUP keeps the registry in use.
    good = PartnerRegistry.of([])
    assert good.reloaded(tmp_path) == (good, caught.value.problems)


def test_encryption_prefers_the_newest_certificate_valid_at_the_moment(
    pki: TestPki, old: Credentials, new: Credentials
) -> None:
    future = pki.ca.issue(
        "Testlegen (fremtidig)", key_name="partner-future", not_before=NOW + timedelta(days=5)
    )
    base = CpaSpec(
        cpa_id="test:cpa:crypt",
        partner=dataclasses.replace(DEFAULT_PARTNER, encryption_certificate=old.certificate),
    )
    document = with_second_certificate(
        cpa_xml(base), "partner_cert_crypt", new.certificate, future.certificate
    )
    partner = parse_cpa(document).party_by_her(PARTNER)
    assert partner is not None
    assert partner.encryption_certificates() == (
        old.certificate,
        new.certificate,
        future.certificate,
    )
    assert partner.encryption_certificate() == old.certificate  # without a moment: the first
    assert partner.encryption_certificate(at=NOW) == new.certificate  # the newer valid one
    assert partner.encryption_certificate(at=NOW + timedelta(days=6)) == future.certificate
