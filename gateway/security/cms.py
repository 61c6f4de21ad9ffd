"""CMS (PKCS#7) enveloped data: the encrypted payload part of an ebXML message, both ways.

Received payload parts are ``application/pkcs7-mime; smime-type=enveloped-data``: AES-256-CBC
content encryption, the key transported with RSA (PKCS#1 v1.5) to our encryption certificate.
``decrypt`` tries each of our keys in turn (the current one, then the previous one during a
certificate rollover). ``encrypt`` does the same for what we send, to the partner's certificate
from the CPA. Both go through ``cryptography``'s PKCS#7 support; nothing is re-implemented here.

Transfer forms accepted by ``decrypt``: DER (what the MIME layer gives after base64 decoding),
PEM (``-----BEGIN PKCS7-----`` / ``CMS``), bare base64, and a whole S/MIME entity (headers plus
base64 body), as mail parts carry it when a sender wraps twice.

CBC has no integrity of its own (a damaged blob may decrypt to garbage instead of failing): the
ebMS signature's ``cid:`` Reference, a digest over the encrypted part, is what protects it, so
verify the envelope signature before decrypting.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key, pkcs7

from gateway.errors import (
    CertificateInvalid,
    ConfigurationError,
    MimeProblem,
    SecurityFailure,
)
from gateway.security.certificates import (
    Purpose,
    check_certificate,
    describe,
    load_certificate_file,
    trim_der,
)

__all__ = [
    "DEFAULT_MAX_PLAIN_BYTES",
    "DecryptionKey",
    "decrypt",
    "encrypt",
    "gunzip",
    "to_der",
]

#: Largest decrypted or decompressed payload accepted (a claim is typically 10-50 KB).
DEFAULT_MAX_PLAIN_BYTES: Final = 20 * 1024 * 1024

_PEM: Final = re.compile(
    rb"-----BEGIN (?P<label>PKCS7|CMS)-----(?P<body>[A-Za-z0-9+/=\s]+)-----END (?P=label)-----"
)
_WHITESPACE: Final = re.compile(rb"\s+")
_HEADER_LINE: Final = re.compile(rb"[A-Za-z0-9-]+:")
# cryptography's message when none of the RecipientInfos names our certificate.
_NO_RECIPIENT: Final = "no recipient"


@dataclass(frozen=True, slots=True)
class DecryptionKey:
    """One of our encryption key pairs: the RSA key and the certificate senders encrypt to."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    def __post_init__(self) -> None:
        public = self.certificate.public_key()
        if not isinstance(public, rsa.RSAPublicKey) or (
            public.public_numbers() != self.key.public_key().public_numbers()
        ):
            raise ConfigurationError(
                f"decryption certificate ({describe(self.certificate)}) does not belong to the key"
            )

    @classmethod
    def from_files(cls, key_path: Path, cert_path: Path) -> DecryptionKey:
        """Load an unencrypted PEM RSA key and its certificate; ``ConfigurationError`` naming
        the file if either is unreadable or they do not belong together. Load once, at start."""
        key_path = Path(key_path)
        try:
            key = load_pem_private_key(key_path.read_bytes(), password=None)
        except OSError as exc:
            raise ConfigurationError(
                f"decryption key file {key_path} cannot be read: {exc}"
            ) from exc
        except TypeError as exc:
            raise ConfigurationError(
                f"decryption key file {key_path} is encrypted; an unencrypted PEM key is required"
            ) from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(
                f"decryption key file {key_path} does not hold a PEM private key: {exc}"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(
                f"decryption key in {key_path} is {type(key).__name__}, but RSA is required"
            )
        certificate = load_certificate_file(cert_path)
        try:
            return cls(key, certificate)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{cert_path} and {key_path}: {exc}") from exc


def decrypt(
    blob: bytes,
    keys: Sequence[DecryptionKey],
    *,
    max_bytes: int = DEFAULT_MAX_PLAIN_BYTES,
) -> bytes:
    """The plaintext of CMS enveloped data ``blob``, decrypted with the first of ``keys`` it was
    encrypted to (list the current key first, then the previous one).

    Raises ``SecurityFailure`` with a Norwegian detail if ``blob`` is not readable enveloped
    data, is encrypted to none of our certificates, or cannot be decrypted.
    """
    if not keys:
        raise ConfigurationError("no decryption key configured")
    der = to_der(blob)
    for candidate in keys:
        try:
            plain = pkcs7.pkcs7_decrypt_der(der, candidate.certificate, candidate.key, [])
        except ValueError as exc:
            if _NO_RECIPIENT in str(exc).lower():
                continue  # encrypted to another of our certificates, or to none
            if "asn1" in str(exc).lower() or "parse" in str(exc).lower():
                raise SecurityFailure(
                    "Den krypterte delen kan ikke leses som CMS (PKCS#7 enveloped-data)."
                ) from exc
            raise SecurityFailure(
                "Den krypterte delen kan ikke dekrypteres (nøkkel eller innhold er skadet)."
            ) from exc
        except UnsupportedAlgorithm as exc:
            raise SecurityFailure(
                "Den krypterte delen bruker en krypteringsalgoritme som ikke støttes "
                "(bruk AES-256-CBC med RSA-nøkkeltransport)."
            ) from exc
        if len(plain) > max_bytes:
            raise SecurityFailure(
                f"Det dekrypterte innholdet er for stort ({len(plain)} byte; høyeste tillatte "
                f"er {max_bytes} byte)."
            )
        return plain
    serials = ", ".join(f"{k.certificate.serial_number:x}" for k in keys)
    raise SecurityFailure(
        "Meldingen er ikke kryptert til noen av mottakerens gjeldende sertifikater "
        f"(serienummer {serials}); bruk krypteringssertifikatet fra CPA-en."
    )


def encrypt(data: bytes, recipient: x509.Certificate, *, at: datetime | None = None) -> bytes:
    """``data`` as DER CMS enveloped data for ``recipient`` (AES-256-CBC, RSA key transport).

    The bytes are encrypted as they are (binary mode: no MIME canonicalization of line ends).
    ``recipient`` must be usable for encryption at ``at`` (default: now); otherwise
    ``ConfigurationError``, as the certificate comes from our own CPA configuration.
    """
    try:
        check_certificate(recipient, at or datetime.now(UTC), Purpose.ENCRYPTION)
    except CertificateInvalid as exc:
        raise ConfigurationError(
            f"cannot encrypt to the partner's certificate ({describe(recipient)}): {exc.detail}"
        ) from exc
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(data)
        .add_recipient(recipient)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def to_der(blob: bytes) -> bytes:
    """The DER bytes of an enveloped-data ``blob`` given as DER, PEM, base64 or S/MIME.

    Raises ``SecurityFailure`` if none of these forms fits.
    """
    data = bytes(blob).lstrip()
    if data.startswith(b"0"):  # a DER SEQUENCE (0x30); binary, so never strip() its end
        return trim_der(data)
    match = _PEM.search(data)
    if match is not None:
        return _base64(match["body"])
    if _HEADER_LINE.match(data):
        return _smime_body(data)
    return _base64(data)


def gunzip(data: bytes, *, max_bytes: int = DEFAULT_MAX_PLAIN_BYTES) -> bytes:
    """Decompress a gzip payload (as the CPA may prescribe inside the encryption), refusing
    output beyond ``max_bytes`` (a decompression bomb) with ``MimeProblem``."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        plain = decompressor.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise MimeProblem(f"Innholdet er ikke gyldig gzip: {exc}.") from exc
    if len(plain) > max_bytes:
        raise MimeProblem(f"Innholdet er for stort når det er pakket ut (over {max_bytes} byte).")
    if not decompressor.eof:
        raise MimeProblem("Innholdet er ikke gyldig gzip: dataene slutter for tidlig.")
    return plain


def _smime_body(data: bytes) -> bytes:
    """The enveloped data of a whole S/MIME entity (headers, blank line, base64 body)."""
    entity = message_from_bytes(data, policy=policy.compat32)
    if entity.is_multipart():
        raise SecurityFailure("Den krypterte delen er en flerdelt MIME-enhet, ikke CMS-data.")
    body = entity.get_payload(decode=True)
    if not isinstance(body, bytes) or not body.strip():
        raise SecurityFailure("Den krypterte delen er tom.")
    body = body.lstrip()
    return trim_der(body) if body.startswith(b"0") else _base64(body)


def _base64(text: bytes) -> bytes:
    try:
        der = base64.b64decode(_WHITESPACE.sub(b"", text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecurityFailure(
            "Den krypterte delen kan ikke leses: verken DER, PEM, base64 eller S/MIME."
        ) from exc
    if not der.startswith(b"0"):
        raise SecurityFailure("Den krypterte delen kan ikke leses som CMS (PKCS#7).")
    return der
