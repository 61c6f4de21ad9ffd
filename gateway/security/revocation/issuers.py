"""The issuer certificates the operator trusts to sign CRLs and OCSP answers (``issuers_dir``).

Partner certificates come from Buypass and Commfides intermediates; their certificates (and the
roots, which do no harm) go into one directory as PEM (one or several per file) or DER files
(``*.pem``, ``*.crt``, ``*.cer``, ``*.der``). Only CA certificates are accepted there. The
directory is trusted as it is, like the CPAs: no path to a root is built.

A certificate's issuer is the one whose subject is its issuer name *and* whose key verifies its
signature; a CRL's the one whose subject is the CRL's issuer and whose key verifies the CRL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from gateway.errors import ConfigurationError
from gateway.security.certificates import load_certificate

__all__ = ["Issuer", "Issuers"]

_SUFFIXES: Final = frozenset({".pem", ".crt", ".cer", ".der"})


@dataclass(frozen=True, slots=True)
class Issuer:
    """A trusted CA certificate and the file it came from (its name in ``[[revocation.ocsp]]``)."""

    certificate: x509.Certificate
    file_name: str

    @property
    def name(self) -> str:
        """The subject, for logs and health."""
        return self.certificate.subject.rfc4514_string()


@dataclass(frozen=True, slots=True)
class Issuers:
    """Every trusted issuer certificate."""

    issuers: tuple[Issuer, ...] = ()

    @classmethod
    def load(cls, directory: Path) -> Issuers:
        """Every CA certificate in ``directory``; ``ConfigurationError`` naming the file for one
        that cannot be read or is not a CA certificate, or if the directory cannot be listed."""
        try:
            paths = sorted(
                p
                for p in directory.iterdir()
                if p.suffix.lower() in _SUFFIXES and not p.name.startswith(".") and p.is_file()
            )
        except OSError as exc:
            raise ConfigurationError(
                f"revocation.issuers_dir {directory} cannot be listed: {exc.strerror or exc}"
            ) from exc
        found: list[Issuer] = []
        for path in paths:
            for certificate in _certificates_in(path):
                if not _is_ca(certificate):
                    raise ConfigurationError(
                        f"{path}: {certificate.subject.rfc4514_string()} is not a CA "
                        "certificate; revocation.issuers_dir holds only issuers"
                    )
                found.append(Issuer(certificate, path.name))
        return cls(tuple(found))

    def __iter__(self) -> Iterator[Issuer]:
        return iter(self.issuers)

    def __len__(self) -> int:
        return len(self.issuers)

    def issuer_of(self, cert: x509.Certificate) -> Issuer | None:
        """The trusted issuer that signed ``cert``, or ``None``."""
        for issuer in self.issuers:
            if issuer.certificate.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(issuer.certificate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return issuer
        return None

    def crl_issuer(self, crl: x509.CertificateRevocationList) -> Issuer | None:
        """The trusted issuer whose key signed ``crl``, or ``None`` (a forged or foreign CRL)."""
        for issuer in self.issuers:
            if issuer.certificate.subject != crl.issuer:
                continue
            public_key = issuer.certificate.public_key()
            try:
                if crl.is_signature_valid(public_key):  # type: ignore[arg-type]
                    return issuer
            except (TypeError, ValueError):
                continue
        return None


def _certificates_in(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)
        return [load_certificate(data)]
    except ValueError as exc:
        raise ConfigurationError(f"{path}: holds no X.509 certificate: {exc}") from exc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
    except ValueError:  # malformed extensions: certainly not a CA to trust
        return False
