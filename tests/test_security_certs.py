"""Certificates: loading, validity, key usage, issuer; the test PKI; the S01/S02 receipt rows."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.ebxml.mime import unwrap
from gateway.errors import (
    APPREC_ERROR_CODE_SYSTEM,
    CertificateInvalid,
    ConfigurationError,
    ReplyChannel,
    SignatureInvalid,
    receipt_for,
)
from gateway.security.certificates import (
    Purpose,
    check_certificate,
    days_to_expiry,
    describe,
    load_certificate,
    load_certificate_file,
)
from tests.support.pki import TestCa, TestPki, Usage, rsa_key

NOW = datetime.now(UTC)
SAMPLE = "ebxml-ebms2/samples/2023_08_29T12_56_58_328.msg"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create()


# --- loading ---------------------------------------------------------------------------------


def test_load_certificate_accepts_pem_der_base64_and_a_chain(pki: TestPki) -> None:
    cert = pki.partner.certificate
    der = cert.public_bytes(Encoding.DER)
    chain = pki.partner.cert_pem + pki.ca.certificate.public_bytes(Encoding.PEM)
    wrapped_b64 = base64.encodebytes(der)  # with line breaks, as in ds:X509Certificate
    for form in (pki.partner.cert_pem, der, base64.b64encode(der), wrapped_b64, chain):
        assert load_certificate(form) == cert


def test_load_certificate_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        load_certificate(b"not a certificate")
    with pytest.raises(ValueError):
        load_certificate(base64.b64encode(b"0\x03\x02\x01\x00"))


def test_load_certificate_file_names_the_file(tmp_path: Path, pki: TestPki) -> None:
    _, cert_path = pki.partner.write(tmp_path, "partner")
    assert load_certificate_file(cert_path) == pki.partner.certificate
    with pytest.raises(ConfigurationError, match=r"missing\.pem"):
        load_certificate_file(tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigurationError, match=r"bad\.pem"):
        load_certificate_file(bad)


# --- checks ----------------------------------------------------------------------------------


def test_a_valid_certificate_passes_for_both_purposes(pki: TestPki) -> None:
    check_certificate(pki.partner.certificate, NOW, Purpose.SIGNING)
    check_certificate(pki.partner.certificate, NOW, Purpose.ENCRYPTION)
    check_certificate(pki.partner.certificate, NOW, Purpose.SIGNING, issuers=[pki.ca.certificate])


def test_expired_certificate_is_refused(pki: TestPki) -> None:
    expired = pki.ca.issue(
        "Gammel lege",
        key_name="partner",
        not_before=NOW - timedelta(days=800),
        not_after=NOW - timedelta(days=1),
    )
    with pytest.raises(CertificateInvalid, match="er utløpt") as caught:
        check_certificate(expired.certificate, NOW, Purpose.SIGNING)
    assert "Gammel lege" in caught.value.detail
    # At a moment within its validity it was fine.
    check_certificate(expired.certificate, NOW - timedelta(days=2), Purpose.SIGNING)


def test_not_yet_valid_certificate_is_refused(pki: TestPki) -> None:
    future = pki.ca.issue("Ny lege", key_name="partner", not_before=NOW + timedelta(days=1))
    with pytest.raises(CertificateInvalid, match="ikke gyldig ennå"):
        check_certificate(future.certificate, NOW, Purpose.SIGNING)


def test_key_usage_must_fit_the_purpose(pki: TestPki) -> None:
    encryption_only = pki.ca.issue("Lege", key_name="partner", usage=Usage.ENCRYPTION)
    signing_only = pki.ca.issue("Lege", key_name="partner", usage=Usage.SIGNING)
    with pytest.raises(CertificateInvalid, match="ikke til signering"):
        check_certificate(encryption_only.certificate, NOW, Purpose.SIGNING)
    with pytest.raises(CertificateInvalid, match="ikke til kryptering"):
        check_certificate(signing_only.certificate, NOW, Purpose.ENCRYPTION)
    check_certificate(encryption_only.certificate, NOW, Purpose.ENCRYPTION)
    check_certificate(signing_only.certificate, NOW, Purpose.SIGNING)


def test_non_repudiation_alone_is_a_signing_certificate(pki: TestPki) -> None:
    # Buypass business signing certificates carry only nonRepudiation.
    buypass_like = pki.ca.issue("Lege", key_name="partner", usage=Usage.NON_REPUDIATION_ONLY)
    check_certificate(buypass_like.certificate, NOW, Purpose.SIGNING)
    with pytest.raises(CertificateInvalid):
        check_certificate(buypass_like.certificate, NOW, Purpose.ENCRYPTION)


def test_other_key_usages_and_no_extension(pki: TestPki) -> None:
    cert_sign = pki.ca.issue("Lege", key_name="partner", usage=Usage.CERT_SIGN_ONLY)
    for purpose in Purpose:
        with pytest.raises(CertificateInvalid):
            check_certificate(cert_sign.certificate, NOW, purpose)
    unrestricted = pki.ca.issue("Lege", key_name="partner", usage=Usage.NONE)
    for purpose in Purpose:
        check_certificate(unrestricted.certificate, NOW, purpose)


def test_a_ca_certificate_is_not_a_partner_certificate(pki: TestPki) -> None:
    with pytest.raises(CertificateInvalid, match="CA-sertifikat"):
        check_certificate(pki.ca.certificate, NOW, Purpose.SIGNING)


def test_issuers_restrict_who_may_have_issued_it(pki: TestPki) -> None:
    other_ca = TestCa.create("Another Test CA")
    # Same subject and even the same key, but issued by another CA.
    stranger = other_ca.issue("Testlegen", key_name="partner", her_id="8141253")
    with pytest.raises(CertificateInvalid, match="godkjent utsteder"):
        check_certificate(stranger.certificate, NOW, Purpose.SIGNING, issuers=[pki.ca.certificate])
    check_certificate(
        stranger.certificate,
        NOW,
        Purpose.SIGNING,
        issuers=[pki.ca.certificate, other_ca.certificate],
    )


def test_naive_moments_are_refused(pki: TestPki) -> None:
    with pytest.raises(ValueError):
        check_certificate(pki.partner.certificate, datetime(2026, 1, 1), Purpose.SIGNING)
    with pytest.raises(ValueError):
        days_to_expiry(pki.partner.certificate, datetime(2026, 1, 1))


def test_days_to_expiry(pki: TestPki) -> None:
    cert = pki.ca.issue("Lege", key_name="partner", not_after=NOW + timedelta(days=30, hours=1))
    assert days_to_expiry(cert.certificate, NOW) == 30
    assert days_to_expiry(cert.certificate, NOW + timedelta(days=40)) == -10


def test_describe_names_subject_and_serial(pki: TestPki) -> None:
    text = describe(pki.partner.certificate)
    assert "Testlegen" in text
    assert f"{pki.partner.certificate.serial_number:x}" in text


# --- receipts ----------------------------------------------------------------------------------


def test_signature_and_certificate_errors_are_answered_with_s01_and_s02() -> None:
    s01 = receipt_for(SignatureInvalid("x"))
    s02 = receipt_for(CertificateInvalid("x"))
    assert (s01.channel, s01.code, s01.text) == (ReplyChannel.APPREC, "S01", "Feil på signatur")
    assert (s02.channel, s02.code, s02.text) == (ReplyChannel.APPREC, "S02", "Ugyldig sertifikat")
    assert s01.code_system == s02.code_system == APPREC_ERROR_CODE_SYSTEM


# --- the test PKI --------------------------------------------------------------------------------


def test_keys_are_cached_per_name_and_certificates_are_fresh(pki: TestPki) -> None:
    assert rsa_key("partner") is rsa_key("partner")
    assert rsa_key("partner") is not rsa_key("gateway-previous")
    again = TestPki.create()
    assert again.partner.key is pki.partner.key
    assert again.partner.certificate != pki.partner.certificate
    assert pki.gateway.key is not pki.gateway_previous.key
    assert pki.partner.key.key_size == 2048
    pki.partner.certificate.verify_directly_issued_by(pki.ca.certificate)


def test_credentials_write_pem_files(tmp_path: Path, pki: TestPki) -> None:
    key_path, cert_path = pki.gateway.write(tmp_path, "gateway")
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert load_certificate_file(cert_path) == pki.gateway.certificate
    assert b"BEGIN PRIVATE KEY" in key_path.read_bytes()


# --- the real sample ----------------------------------------------------------------------------


@pytest.mark.conformance
def test_the_real_senders_certificate_passes_at_the_time_it_was_used(standards: Path) -> None:
    package = unwrap((standards / SAMPLE).read_bytes())
    envelope = etree.fromstring(package.envelope.body)
    text = envelope.findtext(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert text is not None
    cert = load_certificate(text.encode())
    sent = datetime(2023, 8, 29, 10, 56, 50, tzinfo=UTC)
    # A Buypass test business certificate: nonRepudiation only, valid 2022-09-22 .. 2025-09-22.
    check_certificate(cert, sent, Purpose.SIGNING)
    with pytest.raises(CertificateInvalid):
        check_certificate(cert, sent, Purpose.ENCRYPTION)
    with pytest.raises(CertificateInvalid, match="utløpt"):
        check_certificate(cert, datetime(2025, 9, 23, tzinfo=UTC), Purpose.SIGNING)
    assert days_to_expiry(cert, sent) == 755
