"""CMS enveloped data: round trips, key rollover, transfer forms, corrupt blobs, gzip."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from gateway.ebxml.mime import unwrap
from gateway.errors import ConfigurationError, MimeProblem, SecurityFailure
from gateway.security.certificates import trim_der
from gateway.security.cms import DecryptionKey, decrypt, encrypt, gunzip, to_der
from tests.support.pki import TestPki, Usage

NOW = datetime.now(UTC)
SAMPLE = "ebxml-ebms2/samples/2023_08_29T12_56_58_328"
#: DER of the OIDs aes256-CBC (2.16.840.1.101.3.4.1.42) and rsaEncryption (1.2.840.113549.1.1.1).
AES_256_CBC = bytes.fromhex("060960864801650304012a")
RSA_ENCRYPTION = bytes.fromhex("06092a864886f70d010101")
#: Binary on purpose: bare LF, CR LF, NUL and high bytes must survive unchanged.
PAYLOAD = b"<?xml version='1.0'?>\n<MsgHead>\r\n\x00\xff\xfe bl\xc3\xa5b\xc3\xa6r</MsgHead>\n"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create()


@pytest.fixture(scope="module")
def keys(pki: TestPki) -> list[DecryptionKey]:
    """Our keys as configured during a rollover: current first, then previous."""
    return [pki.gateway.decryption_key(), pki.gateway_previous.decryption_key()]


def test_round_trip_keeps_the_bytes_exactly(pki: TestPki, keys: list[DecryptionKey]) -> None:
    blob = encrypt(PAYLOAD, pki.gateway.certificate)
    assert blob[:1] == b"0"  # DER
    assert PAYLOAD not in blob
    assert decrypt(blob, keys) == PAYLOAD


def test_encryption_is_aes_256_cbc_with_rsa_key_transport(pki: TestPki) -> None:
    blob = encrypt(PAYLOAD, pki.partner.certificate)
    assert AES_256_CBC in blob
    assert RSA_ENCRYPTION in blob
    # The partner can read it with its own key; we cannot.
    assert decrypt(blob, [pki.partner.decryption_key()]) == PAYLOAD


def test_rollover_the_previous_key_still_decrypts(pki: TestPki, keys: list[DecryptionKey]) -> None:
    to_previous = encrypt(PAYLOAD, pki.gateway_previous.certificate)
    assert decrypt(to_previous, keys) == PAYLOAD
    with pytest.raises(SecurityFailure, match="ikke kryptert til noen"):
        decrypt(to_previous, keys[:1])


def test_a_blob_for_someone_else_is_refused(pki: TestPki, keys: list[DecryptionKey]) -> None:
    blob = encrypt(PAYLOAD, pki.partner.certificate)
    with pytest.raises(SecurityFailure, match="ikke kryptert til noen") as caught:
        decrypt(blob, keys)
    # The detail names our certificates' serial numbers, to help the sender find the right one.
    assert f"{pki.gateway.certificate.serial_number:x}" in caught.value.detail


def test_corrupt_blobs_are_a_security_failure(pki: TestPki, keys: list[DecryptionKey]) -> None:
    blob = encrypt(PAYLOAD, pki.gateway.certificate)
    for corrupt in (blob[: len(blob) // 2], blob[:-1], b"0\x82\xff\xff" + blob[4:]):
        with pytest.raises(SecurityFailure, match="kan ikke leses som CMS"):
            decrypt(corrupt, keys)
    for garbage in (b"", b"hello world", b"\x00\x01\x02", b"-----BEGIN PKCS7-----\n!!\n"):
        with pytest.raises(SecurityFailure):
            decrypt(garbage, keys)


def test_a_damaged_encrypted_key_never_gives_the_plaintext(
    pki: TestPki, keys: list[DecryptionKey]
) -> None:
    # RSA implicit rejection turns a damaged key into a random one; AES-CBC then fails its
    # padding check, except about once in 256 tries, when it yields garbage. Either way the
    # payload is not revealed; integrity comes from the ebXML signature over the part's bytes.
    refused = 0
    for _ in range(4):
        blob = bytearray(encrypt(PAYLOAD, pki.gateway.certificate))
        # The RSA-encrypted content key: the OCTET STRING of 256 bytes (04 82 01 00).
        start = bytes(blob).index(b"\x04\x82\x01\x00") + 4
        blob[start + 100] ^= 0xFF
        try:
            assert decrypt(bytes(blob), keys) != PAYLOAD
        except SecurityFailure as exc:
            assert "kan ikke dekrypteres" in exc.detail
            refused += 1
    assert refused >= 1  # fails by chance once in 256**4 runs


def test_pem_base64_and_smime_forms_are_accepted(pki: TestPki, keys: list[DecryptionKey]) -> None:
    der = encrypt(PAYLOAD, pki.gateway.certificate)
    builder = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(PAYLOAD)
        .add_recipient(pki.gateway.certificate)
        .set_content_encryption_algorithm(algorithms.AES256)
    )
    binary = [pkcs7.PKCS7Options.Binary]
    forms = {
        "pem": builder.encrypt(Encoding.PEM, binary),
        "smime": builder.encrypt(Encoding.SMIME, binary),
        "smime-crlf": builder.encrypt(Encoding.SMIME, binary).replace(b"\n", b"\r\n"),
        "base64": base64.b64encode(der),
        "base64-lines": base64.encodebytes(der),
        "cms-label": b"-----BEGIN CMS-----\n" + base64.encodebytes(der) + b"-----END CMS-----\n",
        "der-crlf": der + b"\r\n",
    }
    for name, form in forms.items():
        assert decrypt(form, keys) == PAYLOAD, name
    assert to_der(forms["base64"]) == der


def test_der_ending_in_whitespace_bytes_is_not_cut(pki: TestPki, keys: list[DecryptionKey]) -> None:
    # About one blob in 40 ends in a byte that bytes.strip() would remove.
    for _ in range(2000):
        der = encrypt(PAYLOAD, pki.gateway.certificate)
        if der[-1:].isspace():
            break
    else:  # pragma: no cover - one chance in 10**20
        pytest.fail("no blob ended in a whitespace byte")
    smime = (
        b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\n" + der
    )
    for form in (der, der + b"\r\n", b"\n" + der, smime):
        assert decrypt(form, keys) == PAYLOAD


def test_trim_der_removes_only_what_follows_the_declared_length() -> None:
    integer_ten = b"\x30\x03\x02\x01\x0a"
    assert trim_der(integer_ten) == integer_ten
    assert trim_der(integer_ten + b"\r\n \t") == integer_ten
    assert trim_der(integer_ten + b"\r\nX") == integer_ten + b"\r\nX"  # left to the parser
    long_form = b"\x30\x81\x80" + b"\x20" * 0x80
    assert trim_der(long_form + b"\n") == long_form


def test_plaintext_beyond_the_limit_is_refused(pki: TestPki, keys: list[DecryptionKey]) -> None:
    blob = encrypt(b"x" * 1000, pki.gateway.certificate)
    with pytest.raises(SecurityFailure, match="for stort"):
        decrypt(blob, keys, max_bytes=999)
    assert decrypt(blob, keys, max_bytes=1000) == b"x" * 1000


def test_decrypt_needs_a_key() -> None:
    with pytest.raises(ConfigurationError):
        decrypt(b"0", [])


def test_encrypt_refuses_an_unusable_partner_certificate(pki: TestPki) -> None:
    expired = pki.ca.issue(
        "Lege",
        key_name="partner",
        not_before=NOW - timedelta(days=9),
        not_after=NOW - timedelta(days=1),
    )
    signing_only = pki.ca.issue("Lege", key_name="partner", usage=Usage.SIGNING)
    with pytest.raises(ConfigurationError, match="utløpt"):
        encrypt(PAYLOAD, expired.certificate)
    with pytest.raises(ConfigurationError, match="kryptering"):
        encrypt(PAYLOAD, signing_only.certificate)
    # At a moment it was valid, it is used.
    encrypt(PAYLOAD, expired.certificate, at=NOW - timedelta(days=2))


# --- keys --------------------------------------------------------------------------------------


def test_decryption_key_from_files(tmp_path: Path, pki: TestPki) -> None:
    key_path, cert_path = pki.gateway.write(tmp_path, "gateway")
    loaded = DecryptionKey.from_files(key_path, cert_path)
    assert loaded.certificate == pki.gateway.certificate
    assert decrypt(encrypt(PAYLOAD, pki.gateway.certificate), [loaded]) == PAYLOAD


def test_decryption_key_refuses_a_mismatched_pair(tmp_path: Path, pki: TestPki) -> None:
    key_path, _ = pki.gateway.write(tmp_path, "gateway")
    _, other_cert = pki.partner.write(tmp_path, "partner")
    with pytest.raises(ConfigurationError, match="does not belong"):
        DecryptionKey.from_files(key_path, other_cert)
    with pytest.raises(ConfigurationError, match="does not belong"):
        DecryptionKey(pki.gateway.key, pki.partner.certificate)


def test_decryption_key_file_problems_name_the_file(tmp_path: Path, pki: TestPki) -> None:
    _, cert_path = pki.gateway.write(tmp_path, "gateway")
    with pytest.raises(ConfigurationError, match=r"nope\.pem"):
        DecryptionKey.from_files(tmp_path / "nope.pem", cert_path)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"junk")
    with pytest.raises(ConfigurationError, match=r"junk\.pem"):
        DecryptionKey.from_files(junk, cert_path)


# --- gzip --------------------------------------------------------------------------------------


def test_gunzip_round_trip_and_limits() -> None:
    assert gunzip(gzip.compress(PAYLOAD)) == PAYLOAD
    bomb = gzip.compress(b"\x00" * 2_000_000)
    assert len(bomb) < 5_000
    with pytest.raises(MimeProblem, match="for stort"):
        gunzip(bomb, max_bytes=1_000_000)
    with pytest.raises(MimeProblem, match="gzip"):
        gunzip(PAYLOAD)
    with pytest.raises(MimeProblem, match="slutter for tidlig"):
        gunzip(gzip.compress(PAYLOAD * 50)[:-20])


# --- the real sample ----------------------------------------------------------------------------


@pytest.mark.conformance
def test_the_real_encrypted_part_is_cms_for_another_recipient(
    standards: Path, keys: list[DecryptionKey]
) -> None:
    package = unwrap((standards / f"{SAMPLE}.msg").read_bytes())
    (part,) = package.attachments
    assert part.content_type == "application/pkcs7-mime"
    assert dict(part.params)["smime-type"] == "enveloped-data"
    assert to_der(part.body) == part.body
    assert AES_256_CBC in part.body and RSA_ENCRYPTION in part.body
    # Readable CMS, but encrypted to NAV's certificate, not to ours.
    with pytest.raises(SecurityFailure, match="ikke kryptert til noen"):
        decrypt(part.body, keys)
    # What it decrypts to is in the sample too: a gzip-compressed, signed MsgHead.
    msghead = gunzip((standards / f"{SAMPLE}.p7m.deenveloped").read_bytes())
    assert msghead.startswith(b"<?xml") and b"<MsgHead" in msghead
