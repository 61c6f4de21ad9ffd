"""Detached CMS SignedData over a file's exact bytes: how a bare AppRec file is signed.

A bare AppRec has no place for ``ds:Signature``. Where no signed ebXML envelope carries it (a
MsgHead dropped in the spool is answered with a file), gateway writes the AppRec file and a
detached CMS (PKCS#7) SignedData beside it, the way Helsenorge signs payloads: SHA-256,
RSA PKCS#1 v1.5, signed attributes (contentType, signingTime, messageDigest), the signer's
certificate included, no encapsulated content.

``sign`` uses ``cryptography``'s ``PKCS7SignatureBuilder`` with ``DetachedSignature`` and
``Binary`` (without ``Binary`` it signs the data with its line ends turned into CRLF, S/MIME
style, and the signature would not match the file).

``verify`` runs ``openssl cms -verify``. Why: ``cryptography`` has no public API to verify
PKCS#7/CMS (only a test-support hook, not for production use); ``asn1crypto`` is not installed
and would be a new dependency just to parse SignedData, after which the signed-attributes
re-encoding and the digest check would still be ours to get right. OpenSSL's CMS code is the
reference implementation, is installed wherever gateway runs (Debian's ``openssl`` package),
and is fed only our own temporary files, with a timeout. It checks the integrity (the content's
digest against the signed ``messageDigest``, and the signature over the signed attributes);
chain building is turned off (``-noverify``) because trust here is pinning, decided below:

- with a ``trusted`` certificate (the partner's, or our own from config), the signer must be
  exactly that certificate (``-nointern -certfile``, then compared byte for byte);
- without one, the certificate embedded in the signature is used and the result says the
  signer is **not pinned**: the file is intact, but anyone could have signed it.

Only after the integrity check are the signer certificate's dates and key usage checked
(``check_certificate``): a file both tampered with and signed with an expired certificate is
reported as a signature failure (S01), not a certificate one (S02).
"""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from gateway.errors import ConfigurationError, SignatureInvalid
from gateway.security.certificates import Purpose, check_certificate, describe

__all__ = ["SIGNATURE_SUFFIX", "VerifiedSignature", "sign", "to_der", "verify"]

#: The signature file's name is the signed file's name plus this (``x.apprec.xml.p7s``).
SIGNATURE_SUFFIX: Final = ".p7s"
#: How long one ``openssl cms -verify`` may take (a receipt is a few kilobytes).
OPENSSL_TIMEOUT_SECONDS: Final = 30.0

_PEM = re.compile(rb"-----BEGIN (?:PKCS7|CMS)-----(?P<body>.*?)-----END (?:PKCS7|CMS)-----", re.S)
_OPTIONS = [
    pkcs7.PKCS7Options.DetachedSignature,
    pkcs7.PKCS7Options.Binary,
    pkcs7.PKCS7Options.NoCapabilities,
]


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A detached signature that verified: who signed, and whether that signer was pinned."""

    signer: x509.Certificate
    pinned: bool  # False: checked against the certificate the signature itself carries


def sign(
    data: bytes,
    key: rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    *,
    encoding: Literal["DER", "PEM"] = "DER",
    chain: tuple[x509.Certificate, ...] = (),
) -> bytes:
    """A detached CMS SignedData over exactly ``data``, signed with ``key``/``certificate``
    (SHA-256); ``chain`` adds intermediate certificates for the receiver to build a path."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data)
    builder = builder.add_signer(certificate, key, hashes.SHA256())
    for extra in chain:
        builder = builder.add_certificate(extra)
    return builder.sign(Encoding.DER if encoding == "DER" else Encoding.PEM, _OPTIONS)


def to_der(signature: bytes) -> bytes:
    """The DER form of a signature given as DER or PEM (``PKCS7`` or ``CMS`` armour)."""
    match = _PEM.search(signature)
    if match is None:
        return signature
    try:
        return base64.b64decode(b"".join(match["body"].split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalid(
            "Signaturfilen er PEM, men innholdet er ikke gyldig base64."
        ) from exc


def verify(
    data: bytes,
    signature: bytes,
    trusted: x509.Certificate | None = None,
    *,
    at: datetime | None = None,
) -> VerifiedSignature:
    """Check that ``signature`` (DER or PEM) is a valid detached signature over ``data``.

    Raises ``SignatureInvalid`` if the content or signature do not verify, or the signer is not
    ``trusted``; then ``CertificateInvalid`` if the signer's certificate is not valid at ``at``
    (default: now) or not meant for signing. ``ConfigurationError`` if ``openssl`` is missing.
    """
    when = at or datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="gateway-cms-") as folder:
        directory = Path(folder)
        signers = directory / "signers.pem"
        command = [
            _openssl(),
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(_write(directory / "signature.der", to_der(signature))),
            "-content",
            str(_write(directory / "content", data)),
            "-out",
            str(directory / "verified"),
            "-signer",
            str(signers),
            "-noverify",
        ]
        if trusted is not None:
            pem = trusted.public_bytes(Encoding.PEM)
            command += ["-nointern", "-certfile", str(_write(directory / "trusted.pem", pem))]
        _run(command)
        found = x509.load_pem_x509_certificates(signers.read_bytes())
    if len(found) != 1:
        raise SignatureInvalid(f"Signaturen har {len(found)} signerere; én er forventet.")
    signer = found[0]
    if trusted is not None and signer != trusted:  # -nointern already ensures it; belt and braces
        raise SignatureInvalid(
            f"Filen er ikke signert med det forventede sertifikatet ({describe(trusted)})."
        )
    check_certificate(signer, when, Purpose.SIGNING)
    return VerifiedSignature(signer=signer, pinned=trusted is not None)


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        raise ConfigurationError(
            "openssl is not installed; it is needed to verify CMS signatures (apt install openssl)"
        )
    return path


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _run(command: list[str]) -> None:
    try:
        # Fixed arguments and our own temporary files: nothing from the file reaches a shell.
        result = subprocess.run(
            command, capture_output=True, timeout=OPENSSL_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SignatureInvalid("Kontrollen av signaturen tok for lang tid.") from exc
    if result.returncode != 0:
        raise SignatureInvalid(f"Signaturen kan ikke verifiseres: {_reason(result.stderr)}.")


#: OpenSSL's reasons, as the sender is told them; the most specific first (OpenSSL also says
#: "Verification failure" when the signer was not found).
_REASONS: Final = (
    ("signer certificate not found", "den er ikke laget med det forventede sertifikatet"),
    ("reading", "signaturfilen er ikke en CMS-signatur (DER eller PEM)"),
    ("asn1", "signaturfilen er ikke en CMS-signatur (DER eller PEM)"),
    ("verify error", "innholdet er endret, eller signaturen er ikke laget over det"),
    ("verification failure", "innholdet er endret, eller signaturen er ikke laget over det"),
)


def _reason(stderr: bytes) -> str:
    """A Norwegian reason for OpenSSL's complaint; its own words when it is not a known one."""
    text = stderr.decode("utf-8", "replace")
    lowered = text.lower()
    for marker, reason in _REASONS:
        if marker in lowered:
            return reason
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"OpenSSL: {lines[-1][:200]}" if lines else "ukjent feil"
