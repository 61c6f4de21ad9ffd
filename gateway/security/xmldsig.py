"""Enveloped XML-DSig signatures on MsgHead documents, as on the Norwegian health network.

Shape (the same as real signed MsgHead messages): RSA-SHA256, SHA-256 digest, one Reference with
URI="" (the whole document), enveloped-signature transform + inclusive C14N 1.0, KeyInfo/X509Data
with our certificate, ``ds:Signature`` as the last child of the root and without an Id attribute.

Keys are loaded once (``load_signer``) and kept as ``cryptography`` objects: signxml given PEM
bytes re-parses the key on every call, which costs ~40 ms instead of ~1 ms.

Signing is done here without signxml: one C14N of the document, one SHA-256, one C14N of
``SignedInfo`` and the RSA operation, which is what the shape above needs and nothing more.
signxml's general signer spent about as long again as the RSA operation itself (it
canonicalises and re-parses several times); the tests verify every shape this module and
``gateway.security.signatures`` make with signxml's verifier, which ``verify`` uses too.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
)
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, VerifyResult, XMLVerifier

from gateway.errors import ConfigurationError, NotXml, SecurityFailure
from gateway.validation.safe_xml import parse_xml

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_DS = f"{{{DSIG_NS}}}"
_SIGNATURE = _DS + "Signature"
_DS_NSMAP = {"ds": DSIG_NS}
_C14N_10 = CanonicalizationMethod.CANONICAL_XML_1_0.value
_RSA_SHA256 = SignatureMethod.RSA_SHA256.value
_SHA256 = DigestAlgorithm.SHA256.value
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

#: Smallest RSA key we sign with.
MIN_RSA_BITS = 2048

# Accepted when verifying; SHA-1 is refused, as signxml does by default.
_VERIFY_CONFIG = SignatureConfiguration(
    require_x509=True,
    location="./",  # the Signature must be a child of the root, not anywhere in the document
    expect_references=1,
    signature_methods=frozenset(
        {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}
    ),
    digest_algorithms=frozenset(
        {DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}
    ),
)


class Signer:
    """Our signing key and certificate, loaded once; ``sign`` is safe to call from many threads."""

    __slots__ = ("_cert", "_cert_b64", "_cert_pem", "_key")

    def __init__(self, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        _check_pair(key, certificate, "the given certificate")
        self._key = key
        self._cert = certificate
        self._cert_pem = certificate.public_bytes(Encoding.PEM)
        # One unbroken base64 line, as in real NHN messages (signxml would keep the PEM breaks).
        self._cert_b64 = base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")

    @property
    def key(self) -> rsa.RSAPrivateKey:
        return self._key

    @property
    def certificate(self) -> x509.Certificate:
        return self._cert

    @property
    def cert_pem(self) -> bytes:
        """Our certificate as PEM, for ``verify`` and for publishing to partners."""
        return self._cert_pem

    @classmethod
    def from_files(cls, key_path: Path, cert_path: Path) -> Signer:
        """Load an unencrypted PEM private key (PKCS#8 or PKCS#1) and its PEM certificate.

        Raises ``ConfigurationError`` naming the file if either is missing, unreadable, invalid,
        expired, or if the two do not belong together.
        """
        key_path, cert_path = Path(key_path), Path(cert_path)
        key_data = _read(key_path, "signing key")
        try:
            key = load_pem_private_key(key_data, password=None)
        except TypeError as exc:  # encrypted key, and we gave no password
            raise ConfigurationError(
                f"signing key file {key_path} is encrypted; an unencrypted PEM key is required"
            ) from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(
                f"signing key file {key_path} does not hold a PEM private key: {exc}"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(
                f"signing key in {key_path} is {type(key).__name__}, but RSA is required"
            )
        if key.key_size < MIN_RSA_BITS:
            raise ConfigurationError(
                f"signing key in {key_path} has {key.key_size} bits; at least {MIN_RSA_BITS} "
                "are required"
            )

        cert_data = _read(cert_path, "certificate")
        try:
            # A file may hold a chain; ours is the first certificate.
            certificate = x509.load_pem_x509_certificates(cert_data)[0]
        except ValueError as exc:
            raise ConfigurationError(
                f"certificate file {cert_path} does not hold a PEM X.509 certificate: {exc}"
            ) from exc
        _check_pair(key, certificate, f"certificate {cert_path} (key {key_path})")
        if certificate.not_valid_after_utc < datetime.now(UTC):
            raise ConfigurationError(
                f"certificate {cert_path} expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
            )
        return cls(key, certificate)

    @property
    def certificate_b64(self) -> str:
        """Our certificate as one unbroken base64 line (DER), for ``ds:X509Certificate``."""
        return self._cert_b64

    def rsa_sha256(self, data: bytes) -> bytes:
        """The RSA PKCS#1 v1.5 signature over SHA-256 of ``data`` (a canonical SignedInfo)."""
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def sign(self, element: etree._Element) -> etree._Element:
        """Return a signed copy of ``element`` (``ds:Signature`` appended as its last child).

        ``element`` itself is left unchanged. Serialize the result with ``serialize``.
        """
        if element.find(_SIGNATURE) is not None:
            raise ValueError("element is already signed")
        # A root of its own: URI="" is the whole document, and C14N sees no outer context.
        signed = copy.deepcopy(element)
        signed.tail = None
        # The enveloped-signature transform removes the Signature again: the digest is of the
        # document as it is now, canonicalised.
        digest = hashlib.sha256(c14n(signed)).digest()
        signature = etree.SubElement(signed, _SIGNATURE, nsmap=_DS_NSMAP)
        signed_info = etree.SubElement(signature, _DS + "SignedInfo")
        etree.SubElement(signed_info, _DS + "CanonicalizationMethod", Algorithm=_C14N_10)
        etree.SubElement(signed_info, _DS + "SignatureMethod", Algorithm=_RSA_SHA256)
        reference = etree.SubElement(signed_info, _DS + "Reference", URI="")
        transforms = etree.SubElement(reference, _DS + "Transforms")
        etree.SubElement(transforms, _DS + "Transform", Algorithm=_ENVELOPED)
        etree.SubElement(transforms, _DS + "Transform", Algorithm=_C14N_10)
        etree.SubElement(reference, _DS + "DigestMethod", Algorithm=_SHA256)
        etree.SubElement(reference, _DS + "DigestValue").text = base64.b64encode(digest).decode()
        value = self.rsa_sha256(c14n(signed_info))
        etree.SubElement(signature, _DS + "SignatureValue").text = base64.b64encode(value).decode()
        key_info = etree.SubElement(signature, _DS + "KeyInfo")
        x509_data = etree.SubElement(key_info, _DS + "X509Data")
        etree.SubElement(x509_data, _DS + "X509Certificate").text = self._cert_b64
        return signed


def c14n(element: etree._Element) -> bytes:
    """Inclusive C14N 1.0 without comments; for an element inside a tree, as a document subset
    in its context (the namespaces in scope are rendered on it, as XML-DSig requires)."""
    return etree.tostring(element, method="c14n", exclusive=False, with_comments=False)


def serialize(element: etree._Element) -> bytes:
    """UTF-8 bytes with an XML declaration; never pretty-printed (that would break the digest)."""
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def verify(signed: bytes, cert_pem: bytes, *, at: datetime | None = None) -> etree._Element:
    """Check the enveloped signature of ``signed`` against the trusted ``cert_pem``.

    Returns only what was signed: the root element as canonicalized and digested, without the
    Signature. Callers must read from that, never from their own parse of ``signed`` (signature
    wrapping). ``at`` is the moment at which the certificate must be valid (default: now).
    Raises ``SecurityFailure`` with a Norwegian detail.
    """
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise ConfigurationError(f"trusted certificate is not a PEM certificate: {exc}") from exc

    try:
        root = parse_xml(signed)
    except NotXml as exc:
        raise SecurityFailure("Signaturen er ugyldig: meldingen er ikke lesbar XML") from exc
    signatures = root.findall(_SIGNATURE)
    element_children = [child for child in root if isinstance(child.tag, str)]
    if len(signatures) != 1 or element_children[-1] is not signatures[0]:
        raise SecurityFailure(
            "Signaturen er ugyldig: dokumentet skal ha nøyaktig én ds:Signature, som siste element"
        )

    config = _VERIFY_CONFIG if at is None else replace(_VERIFY_CONFIG, verification_time=at)
    try:
        result = XMLVerifier().verify(
            root, x509_cert=certificate, parser=_parser(), expect_config=config
        )
    except InvalidDigest as exc:
        raise SecurityFailure(
            "Signaturen er ugyldig: innholdet er endret etter at det ble signert"
        ) from exc
    except InvalidCertificate as exc:
        raise SecurityFailure(
            "Signaturen er ugyldig: sertifikatet er ikke gyldig på kontrolltidspunktet"
        ) from exc
    except InvalidSignature as exc:
        raise SecurityFailure(
            "Signaturen er ugyldig: signaturverdien stemmer ikke med avsenderens sertifikat"
        ) from exc
    except (InvalidInput, etree.LxmlError) as exc:
        raise SecurityFailure(
            "Signaturen er ugyldig: signaturen har feil form eller bruker en algoritme som ikke "
            "er tillatt"
        ) from exc

    if not isinstance(result, VerifyResult):  # pragma: no cover - expect_references=1
        raise SecurityFailure("Signaturen er ugyldig: uventet antall referanser")
    references = result.signature_xml.findall(f"{_DS}SignedInfo/{_DS}Reference")
    if len(references) != 1 or references[0].get("URI") != "":
        raise SecurityFailure("Signaturen er ugyldig: signaturen dekker ikke hele dokumentet")
    signed_xml: etree._Element | None = result.signed_xml
    if signed_xml is None or signed_xml.tag != root.tag:  # pragma: no cover - URI="" is the root
        raise SecurityFailure("Signaturen er ugyldig: det signerte innholdet kan ikke leses")
    return signed_xml


def load_signer(key_path: Path, cert_path: Path) -> Signer:
    """``Signer.from_files``, cached: files are read again only when they change on disk."""
    key_path, cert_path = Path(key_path).resolve(), Path(cert_path).resolve()
    try:
        key_stamp, cert_stamp = _stamp(key_path), _stamp(cert_path)
    except OSError:
        return Signer.from_files(key_path, cert_path)  # raises the proper ConfigurationError
    return _load_signer_cached(key_path, key_stamp, cert_path, cert_stamp)


@functools.lru_cache(maxsize=8)
def _load_signer_cached(
    key_path: Path,
    key_stamp: tuple[int, int, int],
    cert_path: Path,
    cert_stamp: tuple[int, int, int],
) -> Signer:
    del key_stamp, cert_stamp  # part of the cache key only
    return Signer.from_files(key_path, cert_path)


def _stamp(path: Path) -> tuple[int, int, int]:
    # The inode changes on an atomic replace even within one mtime tick.
    st = path.stat()
    return st.st_mtime_ns, st.st_size, st.st_ino


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigurationError(f"{what} file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigurationError(f"{what} file {path} cannot be read: {exc.strerror}") from exc


def _parser() -> etree.XMLParser:
    # For signxml's own re-parse while verifying: lxml parsers must not be shared between
    # threads, and making one costs a few µs.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _check_pair(key: rsa.RSAPrivateKey, certificate: x509.Certificate, where: str) -> None:
    public = certificate.public_key()
    if not isinstance(public, rsa.RSAPublicKey) or (
        public.public_numbers() != key.public_key().public_numbers()
    ):
        raise ConfigurationError(f"{where} does not belong to the signing key")
