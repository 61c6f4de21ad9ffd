"""Network helpers for test servers: a free port on 127.0.0.1 and a self-signed localhost
certificate (used by ``tests.support.dovecot``, ``tests.support.smtp_sink`` and tests).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["LocalServer", "free_port", "localhost_certificate"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def localhost_certificate(
    directory: Path,
    *,
    common_name: str = "localhost",
    files: tuple[str, str] = ("localhost.crt", "localhost.key"),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[Path, Path]:
    """Write a self-signed certificate and its key (PEM; the key PKCS#8, mode 0600) into
    ``directory`` (created if missing) under the names ``files``; return (cert, key).

    The certificate is for ``localhost`` and 127.0.0.1 (subjectAltName) and is its own CA
    (basicConstraints CA:true), so clients can trust it directly as ``cafile``. It is valid from
    ``not_before`` (default: 5 minutes ago) to ``not_after`` (default: a day from now)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before if not_before is not None else now - dt.timedelta(minutes=5))
        .not_valid_after(not_after if not_after is not None else now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / files[0], directory / files[1]
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


class LocalServer(ABC):
    """A server a test starts on 127.0.0.1: ``with Server(...) as server:`` starts it, and
    closes it on the way out."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Stop the server and clean up what it made."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
