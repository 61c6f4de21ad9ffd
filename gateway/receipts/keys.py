"""Development signing credentials: a self-signed RSA certificate for tests and local runs.

Production uses a certificate from a Norwegian CA (e.g. Buypass, Commfides); these only have the
same shape (RSA-2048, key usage digitalSignature + nonRepudiation).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from cryptography.x509.oid import NameOID

from gateway.errors import ConfigurationError


def generate_dev_credentials(
    key_path: Path,
    cert_path: Path,
    *,
    common_name: str,
    organisation: str,
    her_id: str | None = None,
    days: int = 730,
    overwrite: bool = False,
) -> None:
    """Write a new RSA-2048 key (PKCS#8 PEM, mode 0600) and a self-signed certificate for it.

    Both files are written atomically. Existing files are refused (``FileExistsError``) unless
    ``overwrite`` is true. A HER id, if given, goes into the subject's OU as ``HER-id <id>``.
    """
    key_path, cert_path = Path(key_path), Path(cert_path)
    if days < 1:
        raise ValueError("days must be at least 1")
    if not overwrite:
        for path in (key_path, cert_path):
            if path.exists():
                raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
    ]
    if her_id is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"HER-id {her_id}"))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    name = x509.Name(attributes)
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        # RFC 5280: positive, at most 20 octets; 159 random bits satisfies both.
        .serial_number(secrets.randbits(159) | 1)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # nonRepudiation
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    _write_atomically(key_path, key_pem, mode=0o600, overwrite=overwrite)
    _write_atomically(
        cert_path, certificate.public_bytes(Encoding.PEM), mode=0o644, overwrite=overwrite
    )


def certificate_info(cert_path: Path) -> dict[str, str]:
    """Subject, issuer, serial, validity and SHA-256 fingerprint of a PEM certificate, as text."""
    cert_path = Path(cert_path)
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"certificate file {cert_path} cannot be read: {exc}") from exc
    except ValueError as exc:
        raise ConfigurationError(
            f"certificate file {cert_path} does not hold a PEM X.509 certificate: {exc}"
        ) from exc
    fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
    return {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": format(certificate.serial_number, "x"),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "sha256": fingerprint,
    }


def _write_atomically(path: Path, data: bytes, *, mode: int, overwrite: bool) -> None:
    """Write via a temp file in the same directory, fsync, then rename (or link, to not clobber)."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # mkstemp gives 0600 already; the cert wants 0644
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            tmp.replace(path)
        else:
            # link() fails if the target appeared meanwhile, unlike rename().
            os.link(tmp, path)
            tmp.unlink()
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
