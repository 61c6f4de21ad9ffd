"""X.509 certificates of partners and of the gateway: loading, and the checks before use.

What is checked (``check_certificate``): the validity period at a given moment, that the
certificate is an end-entity certificate, that its key usage allows the purpose (signing:
digitalSignature or nonRepudiation, as Norwegian business certificates carry only the latter;
encryption: keyEncipherment), optionally that one of the given CAs issued it, and, given a
``RevocationCheck``, that it is not revoked (``gateway.security.revocation`` provides one; without
it revocation is not checked, and the partner's certificate is only pinned in the CPA).

A certificate without a KeyUsage extension is not restricted (RFC 5280 §4.2.1.3) and passes the
key-usage check.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.errors import CertificateInvalid, ConfigurationError

__all__ = [
    "Purpose",
    "RevocationCheck",
    "check_certificate",
    "days_to_expiry",
    "describe",
    "load_certificate",
    "load_certificate_file",
    "trim_der",
]

_PEM_BLOCK: Final = re.compile(
    rb"-----BEGIN CERTIFICATE-----(?P<body>[A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----"
)
_WHITESPACE: Final = re.compile(rb"\s+")

_E = TypeVar("_E", bound=x509.ExtensionType)


class Purpose(enum.Enum):
    """What a certificate is about to be used for."""

    SIGNING = "signing"
    """Verifying a signature made with its key (ours: signing with it)."""
    ENCRYPTION = "encryption"
    """Encrypting a content-encryption key to it (RSA key transport)."""


class RevocationCheck(Protocol):
    """Whether a certificate is revoked; ``gateway.security.revocation.RevocationChecker``."""

    def check(self, cert: x509.Certificate, at: datetime) -> None:
        """Return if ``cert`` was not revoked at ``at``; raise ``CertificateRevoked`` if it was,
        ``RevocationUnknown`` if that cannot be established and the policy is to fail closed."""
        ...


def load_certificate(data: bytes) -> x509.Certificate:
    """One certificate from PEM, DER or bare base64 (as in ``ds:X509Certificate``).

    A PEM file holding a chain gives its first certificate. Raises ``ValueError`` if ``data``
    holds no certificate.
    """
    stripped = data.lstrip()
    if stripped.startswith(b"0"):  # DER: a SEQUENCE (0x30)
        return x509.load_der_x509_certificate(trim_der(stripped))
    match = _PEM_BLOCK.search(stripped)
    der = _b64(match["body"] if match is not None else stripped)
    return x509.load_der_x509_certificate(der)


def trim_der(data: bytes) -> bytes:
    """``data`` cut to the length its outer DER header declares, if only whitespace follows.

    Binary DER may end in bytes that look like whitespace, so it must never be ``strip()``-ed;
    this removes what a MIME layer may have appended (a CR LF) and nothing else.
    """
    if len(data) < 2:
        return data
    if data[1] < 0x80:
        total = 2 + data[1]
    else:
        count = data[1] & 0x7F
        if not 0 < count <= 4 or len(data) < 2 + count:
            return data
        total = 2 + count + int.from_bytes(data[2 : 2 + count], "big")
    if len(data) > total and not data[total:].strip():
        return data[:total]
    return data


def load_certificate_file(path: Path) -> x509.Certificate:
    """``load_certificate`` of a file; ``ConfigurationError`` naming the file if it fails."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"certificate file {path} cannot be read: {exc}") from exc
    try:
        return load_certificate(data)
    except ValueError as exc:
        raise ConfigurationError(
            f"certificate file {path} does not hold an X.509 certificate: {exc}"
        ) from exc


def check_certificate(
    cert: x509.Certificate,
    at: datetime,
    purpose: Purpose,
    *,
    issuers: Sequence[x509.Certificate] = (),
    revocation: RevocationCheck | None = None,
) -> None:
    """Raise ``CertificateInvalid`` (Norwegian detail) unless ``cert`` may be used for ``purpose``.

    ``at`` (timezone-aware) must lie within the validity period. With ``issuers`` given, one of
    them must have issued and signed ``cert``. With ``revocation``, it must not be revoked
    (``CertificateRevoked``, or ``RevocationUnknown`` when that cannot be established); this
    runs last, so an expired or unusable certificate is reported as such, without a look-up.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    who = describe(cert)
    if at < cert.not_valid_before_utc:
        raise CertificateInvalid(
            f"Sertifikatet ({who}) er ikke gyldig ennå; det gjelder fra "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC."
        )
    if at > cert.not_valid_after_utc:
        raise CertificateInvalid(
            f"Sertifikatet ({who}) er utløpt; det gjaldt til "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC."
        )
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise CertificateInvalid(f"Sertifikatet ({who}) har ikke en RSA-nøkkel.")
    basic = _extension(cert, x509.BasicConstraints)
    if basic is not None and basic.ca:
        raise CertificateInvalid(
            f"Sertifikatet ({who}) er et CA-sertifikat, ikke et virksomhetssertifikat."
        )
    usage = _extension(cert, x509.KeyUsage)
    if usage is not None:
        if purpose is Purpose.SIGNING and not (usage.digital_signature or usage.content_commitment):
            raise CertificateInvalid(
                f"Sertifikatet ({who}) er ikke til signering (mangler digitalSignature og "
                "nonRepudiation i nøkkelbruk)."
            )
        if purpose is Purpose.ENCRYPTION and not usage.key_encipherment:
            raise CertificateInvalid(
                f"Sertifikatet ({who}) er ikke til kryptering (mangler keyEncipherment i "
                "nøkkelbruk)."
            )
    if issuers and not any(_issued_by(cert, issuer) for issuer in issuers):
        raise CertificateInvalid(
            f"Sertifikatet ({who}) er ikke utstedt av en godkjent utsteder "
            f"({cert.issuer.rfc4514_string()})."
        )
    if revocation is not None:
        revocation.check(cert, at)


def days_to_expiry(cert: x509.Certificate, at: datetime) -> int:
    """Whole days from ``at`` until ``cert`` expires; negative once it has expired."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    return (cert.not_valid_after_utc - at).days


def describe(cert: x509.Certificate) -> str:
    """Subject CN (or the whole subject), serial and fingerprint prefix: for texts and logs."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    subject = str(names[0].value) if names else cert.subject.rfc4514_string()
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()[:16]
    return f"{subject}, serienummer {cert.serial_number:x}, SHA-256 {fingerprint}…"


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _extension(cert: x509.Certificate, kind: type[_E]) -> _E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _b64(text: bytes) -> bytes:
    try:
        return base64.b64decode(_WHITESPACE.sub(b"", text), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not PEM, DER or base64") from exc
