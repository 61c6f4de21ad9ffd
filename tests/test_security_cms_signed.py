"""Detached CMS signatures over a bare AppRec file: ours verify with an independent verifier
(``openssl cms -verify``), OpenSSL's own verify with ours, and every way to break one is caught
(integrity before the certificate's dates)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.claims.model import Code, Ident, Organisation
from gateway.errors import CertificateInvalid, ConfigurationError, SignatureInvalid
from gateway.receipts.apprec import AppRec, AppRecStatus, AppRecVersion, serialize_apprec
from gateway.security.cms_signed import sign, to_der, verify
from tests.support.pki import TestCa, TestPki, Usage

NOW = datetime.now(UTC)


def _openssl_version() -> str | None:
    try:
        result = subprocess.run(["openssl", "version"], capture_output=True, check=False)
    except FileNotFoundError:
        return None
    return result.stdout.decode().strip() if result.returncode == 0 else None


OPENSSL = _openssl_version()
needs_openssl = pytest.mark.skipif(
    OPENSSL is None or not OPENSSL.startswith(("OpenSSL 1.1", "OpenSSL 3")),
    reason=f"openssl cms (OpenSSL 1.1 or 3) is needed as the independent verifier: {OPENSSL}",
)
pytestmark = needs_openssl


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create()


@pytest.fixture(scope="module")
def apprec_file() -> bytes:
    """A bare AppRec 1.1, as a spool answer file; mixed line ends must survive signing."""
    helfo = Organisation("Helfo", (Ident("79768", "HER"),))
    apprec = AppRec(
        id="a1",
        gen_date=datetime(2024, 3, 1, 12, 0),
        sender=helfo,
        receiver=Organisation("Speare AS", (Ident("8141253", "HER"),)),
        status=AppRecStatus.OK,
        errors=(),
        original_msg_type=Code("POM", text="Poliklinisk oppgjørsmelding"),
        original_issue_date=datetime(2024, 3, 1, 11, 0),
        original_msg_id="m1",
        version=AppRecVersion.V1_1,
    )
    return serialize_apprec(apprec) + b"\r\n<!-- slutt -->\n"


def openssl_verify(
    tmp_path: Path, data: bytes, signature: bytes, ca: TestCa, *, inform: str = "DER"
) -> subprocess.CompletedProcess[bytes]:
    """The independent verifier: OpenSSL, building the chain to the test CA."""
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "sig").write_bytes(signature)
    (tmp_path / "ca.pem").write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    command = ["openssl", "cms", "-verify", "-binary", "-inform", inform, "-in", "sig"]
    command += ["-content", "data", "-CAfile", "ca.pem", "-purpose", "any", "-out", "out"]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, check=False)


# --- ours, verified by OpenSSL --------------------------------------------------------------------


@pytest.mark.conformance
@pytest.mark.parametrize("encoding", ["DER", "PEM"])
def test_openssl_verifies_our_detached_signature(
    tmp_path: Path, pki: TestPki, apprec_file: bytes, encoding: str
) -> None:
    signature = sign(apprec_file, pki.gateway.key, pki.gateway.certificate, encoding=encoding)  # type: ignore[arg-type]
    result = openssl_verify(tmp_path, apprec_file, signature, pki.ca, inform=encoding)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Verification successful" in result.stderr
    assert (tmp_path / "out").read_bytes() == apprec_file  # signed exactly, CRLF and all


@pytest.mark.conformance
def test_openssl_refuses_our_signature_over_changed_content(
    tmp_path: Path, pki: TestPki, apprec_file: bytes
) -> None:
    signature = sign(apprec_file, pki.gateway.key, pki.gateway.certificate)
    changed = apprec_file.replace(b"\r\n", b"\n")
    assert openssl_verify(tmp_path, changed, signature, pki.ca).returncode != 0


def test_the_signature_is_detached_and_carries_the_signer(pki: TestPki, apprec_file: bytes) -> None:
    signature = sign(apprec_file, pki.gateway.key, pki.gateway.certificate)
    assert apprec_file not in signature  # no encapsulated content
    assert pki.gateway.certificate.public_bytes(Encoding.DER) in signature
    pem = sign(apprec_file, pki.gateway.key, pki.gateway.certificate, encoding="PEM")
    assert pem.startswith(b"-----BEGIN PKCS7-----") and to_der(pem).startswith(b"\x30")


# --- OpenSSL's and ours, verified by ours ---------------------------------------------------------


def test_verify_accepts_a_signature_made_by_openssl(
    tmp_path: Path, pki: TestPki, apprec_file: bytes
) -> None:
    key, cert = pki.partner.write(tmp_path, "partner")
    (tmp_path / "data").write_bytes(apprec_file)
    command = ["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER"]
    command += ["-in", "data", "-signer", str(cert), "-inkey", str(key), "-out", "sig"]
    subprocess.run(command, cwd=tmp_path, capture_output=True, check=True)
    signature = (tmp_path / "sig").read_bytes()

    verified = verify(apprec_file, signature, pki.partner.certificate)
    assert verified.signer == pki.partner.certificate and verified.pinned


def test_verify_pinned_and_unpinned(pki: TestPki, apprec_file: bytes) -> None:
    signature = sign(apprec_file, pki.gateway.key, pki.gateway.certificate)
    pinned = verify(apprec_file, signature, pki.gateway.certificate)
    assert pinned.pinned and pinned.signer == pki.gateway.certificate
    unpinned = verify(apprec_file, signature)  # the embedded certificate, said so
    assert not unpinned.pinned and unpinned.signer == pki.gateway.certificate
    pem = sign(apprec_file, pki.gateway.key, pki.gateway.certificate, encoding="PEM")
    assert verify(apprec_file, pem, pki.gateway.certificate).pinned


def test_changed_content_is_a_signature_failure(pki: TestPki, apprec_file: bytes) -> None:
    signature = sign(apprec_file, pki.gateway.key, pki.gateway.certificate)
    for changed in (apprec_file + b" ", apprec_file.replace(b"\r\n", b"\n"), b""):
        with pytest.raises(SignatureInvalid, match="innholdet er endret"):
            verify(changed, signature, pki.gateway.certificate)


def test_another_signer_than_the_trusted_one_is_refused(pki: TestPki, apprec_file: bytes) -> None:
    signature = sign(apprec_file, pki.partner.key, pki.partner.certificate)
    with pytest.raises(SignatureInvalid, match="ikke laget med det forventede sertifikatet"):
        verify(apprec_file, signature, pki.gateway.certificate)
    # The same key under another CA's certificate is not the trusted certificate either.
    stranger = TestCa.create("Another CA").issue("Gateway", key_name="gateway")
    forged = sign(apprec_file, pki.gateway.key, stranger.certificate)
    with pytest.raises(SignatureInvalid):
        verify(apprec_file, forged, pki.gateway.certificate)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not a signature",
        b"\x30\x03\x02\x01\x01",
        b"-----BEGIN PKCS7-----\n!!\n-----END PKCS7-----",
    ],
)
def test_malformed_signatures_are_refused(pki: TestPki, apprec_file: bytes, garbage: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        verify(apprec_file, garbage, pki.gateway.certificate)


def test_integrity_is_checked_before_the_certificates_dates(
    pki: TestPki, apprec_file: bytes
) -> None:
    expired = pki.ca.issue(
        "Gammel Helfo",
        key_name="gateway",
        not_before=NOW - timedelta(days=400),
        not_after=NOW - timedelta(days=1),
    )
    signature = sign(apprec_file, expired.key, expired.certificate)

    with pytest.raises(CertificateInvalid, match="utløpt"):
        verify(apprec_file, signature, expired.certificate)
    with pytest.raises(SignatureInvalid):  # tampered and expired: S01, not S02
        verify(apprec_file + b"x", signature, expired.certificate)
    back_then = verify(apprec_file, signature, expired.certificate, at=NOW - timedelta(days=30))
    assert back_then.pinned


def test_a_certificate_not_meant_for_signing_is_refused(pki: TestPki, apprec_file: bytes) -> None:
    encryption_only = pki.ca.issue("Helfo krypt", key_name="gateway", usage=Usage.ENCRYPTION)
    signature = sign(apprec_file, encryption_only.key, encryption_only.certificate)
    with pytest.raises(CertificateInvalid):
        verify(apprec_file, signature, encryption_only.certificate)


def test_without_openssl_verification_refuses_to_guess(
    pki: TestPki, apprec_file: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    signature = sign(apprec_file, pki.gateway.key, pki.gateway.certificate)
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(ConfigurationError, match="openssl"):
        verify(apprec_file, signature, pki.gateway.certificate)
