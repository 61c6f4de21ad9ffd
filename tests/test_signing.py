"""Signing AppRec carriers, verifying them, and the signing credentials."""

from __future__ import annotations

import base64
import copy
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod
from signxml.signer import XMLSigner
from signxml.verifier import VerifyResult, XMLVerifier

from gateway.claims.model import Code, Ident, Organisation
from gateway.errors import ConfigurationError, SecurityFailure
from gateway.receipts.apprec import (
    APPREC_NS,
    MSGHEAD_NS,
    AppRec,
    AppRecError,
    AppRecStatus,
    apprec_from_msghead,
    build_apprec,
    wrap_in_msghead,
)
from gateway.receipts.keys import certificate_info, generate_dev_credentials
from gateway.security.xmldsig import Signer, load_signer, serialize, verify

DS = "{http://www.w3.org/2000/09/xmldsig#}"
AR = f"{{{APPREC_NS}}}"
MH = f"{{{MSGHEAD_NS}}}"

HELFO = Organisation("Helfo", (Ident("79768", "HER"), Ident("889640782", "ENH")))
SPEARE = Organisation("Speare AS", (Ident("8141253", "HER"),))


def get(
    parent: etree._Element | None, path: str, namespaces: dict[str, str] | None = None
) -> etree._Element:
    """``parent.find(path)``, failing the test when there is nothing."""
    assert parent is not None
    found = parent.find(path, namespaces)
    assert found is not None, f"{path} not found"
    return found


def attrs(element: etree._Element) -> dict[str, str]:
    return {str(k): str(v) for k, v in element.attrib.items()}


@dataclass(frozen=True)
class Credentials:
    key: Path
    cert: Path


def make_credentials(directory: Path, name: str = "gateway") -> Credentials:
    creds = Credentials(directory / f"{name}.key.pem", directory / f"{name}.cert.pem")
    generate_dev_credentials(
        creds.key, creds.cert, common_name=name, organisation="Helfo test", her_id="79768"
    )
    return creds


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    return make_credentials(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def signer(creds: Credentials) -> Signer:
    return Signer.from_files(creds.key, creds.cert)


def carrier(status: AppRecStatus = AppRecStatus.OK) -> etree._Element:
    errors = () if status is AppRecStatus.OK else (AppRecError("X99", "Annen feil æøå"),)
    apprec = AppRec(
        id="a1",
        gen_date=datetime(2024, 3, 1, 12, 0, 0),
        sender=HELFO,
        receiver=SPEARE,
        status=status,
        errors=errors,
        original_msg_type=Code("POM", text="Poliklinisk oppgjørsmelding"),
        original_issue_date=datetime(2024, 2, 29, 8, 0, 0),
        original_msg_id="orig-1",
    )
    return wrap_in_msghead(
        build_apprec(apprec),
        msg_id="m1",
        gen_date=datetime(2024, 3, 1, 12, 0, 0),
        sender=HELFO,
        receiver=SPEARE,
    )


@pytest.fixture(scope="module")
def signed_bytes(signer: Signer) -> bytes:
    return serialize(signer.sign(carrier()))


# --- signing ------------------------------------------------------------------------------------


def test_signature_is_last_child_without_id_and_has_the_nhn_algorithms(signer: Signer) -> None:
    unsigned = carrier()
    signed = signer.sign(unsigned)

    assert unsigned.find(DS + "Signature") is None  # the input is left alone
    signature = signed[len(signed) - 1]
    assert signature.tag == DS + "Signature"
    assert attrs(signature) == {}
    assert [etree.QName(c).localname for c in signed] == ["MsgInfo", "Document", "Signature"]
    info = get(signature, DS + "SignedInfo")
    assert get(info, DS + "CanonicalizationMethod").get("Algorithm") == (
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    )
    assert get(info, DS + "SignatureMethod").get("Algorithm") == (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    )
    (reference,) = info.findall(DS + "Reference")
    assert reference.get("URI") == ""
    assert [t.get("Algorithm") for t in reference.iter(DS + "Transform")] == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    ]
    assert get(reference, DS + "DigestMethod").get("Algorithm") == (
        "http://www.w3.org/2001/04/xmlenc#sha256"
    )
    cert_text = signature.findtext(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert cert_text is not None and "\n" not in cert_text
    assert x509.load_der_x509_certificate(base64.b64decode(cert_text)) == signer.certificate


AWKWARD = (
    b'<r:Root xmlns:r="urn:r" xmlns="urn:default" b="2" a="1">'
    b'<!-- a comment --><Child xml:lang="no" z="&quot;">\xc3\xa6\xc3\xb8\xc3\xa5 &amp; &lt;'
    b'</Child>\r\n  <x:y xmlns:x="urn:x" x:q="1"/><Empty></Empty>\t</r:Root>'
)


@pytest.mark.parametrize("document", [AWKWARD, None], ids=["awkward", "apprec"])
def test_our_signature_is_the_one_signxml_makes_and_verifies(
    signer: Signer, document: bytes | None
) -> None:
    """The lean signer against signxml's: the same digest and the same SignedInfo (RSA PKCS#1
    v1.5 is deterministic, so the same value too), and signxml's verifier accepts ours; on a
    document with namespaces, attribute order, comments, entities, CR/LF and non-ASCII."""
    element = etree.fromstring(document) if document is not None else carrier()
    ours = signer.sign(element)
    theirs = XMLSigner(c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0).sign(
        copy.deepcopy(element), key=signer.key, cert=signer.cert_pem.decode()
    )
    for path in ("SignedInfo", "SignatureValue"):
        ours_c14n = etree.tostring(get(ours, f"{DS}Signature/{DS}{path}"), method="c14n")
        theirs_c14n = etree.tostring(get(theirs, f"{DS}Signature/{DS}{path}"), method="c14n")
        assert ours_c14n == theirs_c14n, path
    verified = XMLVerifier().verify(serialize(ours), x509_cert=signer.cert_pem.decode())
    assert isinstance(verified, VerifyResult) and verified.signed_xml is not None
    assert etree.tostring(verified.signed_xml, method="c14n") == etree.tostring(
        element, method="c14n", with_comments=False
    )


def test_signing_twice_is_refused(signer: Signer) -> None:
    with pytest.raises(ValueError, match="already signed"):
        signer.sign(signer.sign(carrier()))


def test_round_trip_returns_what_was_signed(signer: Signer, signed_bytes: bytes) -> None:
    verified = verify(signed_bytes, signer.cert_pem)

    assert verified.tag == MH + "MsgHead"
    assert verified.find(DS + "Signature") is None  # the enveloped signature is not content
    assert etree.tostring(verified, method="c14n") == etree.tostring(carrier(), method="c14n")
    assert apprec_from_msghead(verified).findtext(AR + "Id") == "a1"


def test_signing_is_fast_with_a_loaded_key(signer: Signer) -> None:
    element = carrier()
    signer.sign(element)
    start = time.perf_counter()
    for _ in range(20):
        signer.sign(element)
    # ~1.2 ms measured; PEM bytes instead of key objects would be ~45 ms.
    assert (time.perf_counter() - start) / 20 < 0.020


def test_signer_works_from_several_threads(signer: Signer) -> None:
    def sign_and_verify(index: int) -> str:
        status = AppRecStatus.OK if index % 2 else AppRecStatus.AVVIST
        verified = verify(serialize(signer.sign(carrier(status))), signer.cert_pem)
        return get(apprec_from_msghead(verified), AR + "Status").get("V", "")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(sign_and_verify, range(40)))
    assert results == ["2" if i % 2 == 0 else "1" for i in range(40)]


# --- verification failures ----------------------------------------------------------------------


def _tampered(signed_bytes: bytes, change: str) -> bytes:
    root = etree.fromstring(signed_bytes)
    status = get(root, f"{MH}Document/{MH}RefDoc/{MH}Content/{AR}AppRec/{AR}Status")
    if change == "attribute":
        status.set("V", "2")
    else:
        get(status.getparent(), AR + "Id").text = "a2"
    return serialize(root)


@pytest.mark.parametrize("change", ["attribute", "text"])
def test_tampering_after_signing_is_detected(
    signer: Signer, signed_bytes: bytes, change: str
) -> None:
    with pytest.raises(SecurityFailure, match="endret etter"):
        verify(_tampered(signed_bytes, change), signer.cert_pem)


def test_tampered_signed_info_is_detected(signer: Signer, signed_bytes: bytes) -> None:
    root = etree.fromstring(signed_bytes)
    digest = get(root, f"{DS}Signature/{DS}SignedInfo/{DS}Reference/{DS}DigestValue")
    digest.text = "A" + (digest.text or "")[1:]
    with pytest.raises(SecurityFailure, match="signaturverdien"):
        verify(serialize(root), signer.cert_pem)


def test_wrong_certificate_is_refused(
    signed_bytes: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = make_credentials(tmp_path_factory.mktemp("other"), "other")
    with pytest.raises(SecurityFailure, match="stemmer ikke"):
        verify(signed_bytes, other.cert.read_bytes())


def test_certificate_must_be_valid_at_the_checked_time(signer: Signer, signed_bytes: bytes) -> None:
    with pytest.raises(SecurityFailure, match="sertifikatet er ikke gyldig"):
        verify(signed_bytes, signer.cert_pem, at=datetime(2001, 1, 1, tzinfo=UTC))


def test_wrapping_forged_content_with_the_signed_one_hidden_in_an_object(
    signer: Signer, signed_bytes: bytes
) -> None:
    # Classic XSW: the original moves into ds:Object, forged content takes its place.
    forged = etree.fromstring(_tampered(signed_bytes, "attribute"))
    original = etree.fromstring(signed_bytes)
    signature = get(original, DS + "Signature")
    original.remove(signature)
    hidden = etree.SubElement(signature, DS + "Object")
    hidden.append(original)
    forged.replace(get(forged, DS + "Signature"), signature)

    with pytest.raises(SecurityFailure):
        verify(serialize(forged), signer.cert_pem)


def test_wrapping_the_signed_document_inside_a_forged_one(
    signer: Signer, signed_bytes: bytes
) -> None:
    forged = carrier(AppRecStatus.AVVIST)
    get(forged, f"{MH}Document/{MH}RefDoc/{MH}Content").append(etree.fromstring(signed_bytes))

    with pytest.raises(SecurityFailure, match="siste element"):
        verify(serialize(forged), signer.cert_pem)


def test_a_second_signature_is_refused(signer: Signer, signed_bytes: bytes) -> None:
    root = etree.fromstring(signed_bytes)
    root.insert(1, copy.deepcopy(get(root, DS + "Signature")))
    with pytest.raises(SecurityFailure, match="nøyaktig én"):
        verify(serialize(root), signer.cert_pem)


def test_a_signature_over_part_of_the_document_is_refused(signer: Signer) -> None:
    # Valid, by our own key, but it covers only MsgInfo: the Document could be anything.
    unsigned = carrier()
    get(unsigned, MH + "MsgInfo").set("Id", "info")
    partial = XMLSigner(c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0).sign(
        unsigned, key=signer.key, cert=[signer.certificate], reference_uri="#info"
    )
    with pytest.raises(SecurityFailure, match="hele dokumentet"):
        verify(serialize(partial), signer.cert_pem)


def test_unsigned_content_is_not_returned(signer: Signer, signed_bytes: bytes) -> None:
    # Comments are outside C14N without comments: valid signature, but not part of the result.
    root = etree.fromstring(signed_bytes)
    get(root, f"{MH}Document/{MH}RefDoc/{MH}Content/{AR}AppRec").append(
        etree.Comment(" Status: Avvist ")
    )
    verified = verify(serialize(root), signer.cert_pem)
    assert b"Avvist" not in etree.tostring(verified)


@pytest.mark.parametrize(
    "data",
    [
        b"not xml",
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
        b'<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24"/>',
    ],
    ids=["not-xml", "dtd", "unsigned"],
)
def test_malformed_or_unsigned_input_is_refused(signer: Signer, data: bytes) -> None:
    with pytest.raises(SecurityFailure, match="Signaturen er ugyldig"):
        verify(data, signer.cert_pem)


def test_trusted_certificate_must_be_pem() -> None:
    with pytest.raises(ConfigurationError, match="not a PEM certificate"):
        verify(b"<a/>", b"garbage")


# --- loading credentials ------------------------------------------------------------------------


def _self_signed(
    key: rsa.RSAPrivateKey, *, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )


def test_missing_files_are_named(creds: Credentials, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError, match=f"signing key file {missing} does not exist"):
        Signer.from_files(missing, creds.cert)
    with pytest.raises(ConfigurationError, match=f"certificate file {missing} does not exist"):
        Signer.from_files(creds.key, missing)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_signer(missing, creds.cert)


def test_unreadable_file_is_named(creds: Credentials, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"signing key file {tmp_path} cannot be read"):
        Signer.from_files(tmp_path, creds.cert)  # a directory


def test_mismatched_key_and_certificate(creds: Credentials, tmp_path: Path) -> None:
    other = make_credentials(tmp_path, "other")
    with pytest.raises(ConfigurationError, match=f"certificate {other.cert} .*does not belong"):
        Signer.from_files(creds.key, other.cert)


@pytest.mark.parametrize("kind", ["garbage", "encrypted", "ec", "small-rsa"])
def test_unusable_keys_are_refused(creds: Credentials, tmp_path: Path, kind: str) -> None:
    key_path = tmp_path / "key.pem"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "garbage":
        key_path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    elif kind == "encrypted":
        key_path.write_bytes(
            rsa_key.private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"secret")
            )
        )
    elif kind == "ec":
        ec_key = ec.generate_private_key(ec.SECP256R1())
        key_path.write_bytes(
            ec_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )
    else:
        small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        key_path.write_bytes(small.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(ConfigurationError, match=str(key_path)):
        Signer.from_files(key_path, creds.cert)


def test_bad_and_expired_certificates_are_refused(creds: Credentials, tmp_path: Path) -> None:
    cert_path = tmp_path / "cert.pem"
    cert_path.write_bytes(b"not a certificate")
    with pytest.raises(ConfigurationError, match=f"{cert_path} does not hold a PEM X.509"):
        Signer.from_files(creds.key, cert_path)

    key_path = tmp_path / "key.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    now = datetime.now(UTC)
    expired = _self_signed(key, not_before=now - timedelta(days=30), not_after=now - timedelta(1))
    cert_path.write_bytes(expired.public_bytes(Encoding.PEM))
    with pytest.raises(ConfigurationError, match=f"certificate {cert_path} expired"):
        Signer.from_files(key_path, cert_path)


def test_pkcs1_key_is_accepted(signer: Signer, tmp_path: Path, creds: Credentials) -> None:
    key_path = tmp_path / "pkcs1.pem"
    key_path.write_bytes(
        signer.key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    )
    assert key_path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert Signer.from_files(key_path, creds.cert).cert_pem == signer.cert_pem


def test_load_signer_loads_once_and_notices_new_files(tmp_path: Path) -> None:
    creds = make_credentials(tmp_path)
    first = load_signer(creds.key, creds.cert)
    assert load_signer(creds.key, creds.cert) is first

    generate_dev_credentials(
        creds.key, creds.cert, common_name="renewed", organisation="Helfo test", overwrite=True
    )
    renewed = load_signer(creds.key, creds.cert)
    assert renewed is not first
    assert renewed.cert_pem != first.cert_pem


# --- development credentials --------------------------------------------------------------------


def test_dev_certificate_has_the_signing_key_usage(creds: Credentials) -> None:
    cert = x509.load_pem_x509_certificate(creds.cert.read_bytes())

    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature and key_usage.value.content_commitment
    assert not key_usage.value.key_cert_sign and not key_usage.value.key_encipherment
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is False
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert cert.serial_number > 0
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.public_key().key_size == 2048  # type: ignore[union-attr]
    assert cert.not_valid_before_utc < datetime.now(UTC) - timedelta(minutes=59)
    assert cert.not_valid_after_utc > datetime.now(UTC) + timedelta(days=729)


def test_dev_key_is_private_pkcs8(creds: Credentials) -> None:
    assert stat.S_IMODE(creds.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(creds.cert.stat().st_mode) == 0o644
    assert creds.key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert not list(creds.key.parent.glob(".*"))  # no temp files left behind


def test_existing_files_are_not_overwritten(creds: Credentials) -> None:
    before = creds.key.read_bytes(), creds.cert.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_dev_credentials(creds.key, creds.cert, common_name="x", organisation="y")
    assert (creds.key.read_bytes(), creds.cert.read_bytes()) == before


def test_certificate_info(creds: Credentials, tmp_path: Path) -> None:
    info = certificate_info(creds.cert)

    assert info["subject"] == "CN=gateway,OU=HER-id 79768,O=Helfo test,C=NO"
    assert info["issuer"] == info["subject"]
    assert datetime.fromisoformat(info["not_after"]) > datetime.now(UTC)
    cert = x509.load_pem_x509_certificate(creds.cert.read_bytes())
    assert info["sha256"] == cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert len(info["sha256"].split(":")) == 32
    with pytest.raises(ConfigurationError, match="cannot be read"):
        certificate_info(tmp_path / "missing.pem")
