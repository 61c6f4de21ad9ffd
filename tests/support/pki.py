"""A throw-away PKI for tests: a test CA, and gateway and partner certificates it issues.

Part of the tests' own support package (``tests.support``), shared with the benchmarks; the
daemon makes its development keys with ``gateway keys generate`` (``gateway.receipts.keys``).

RSA-2048 keys are the slow part (~50 ms each), so keys are cached per process by name: asking
twice for ``"partner"`` gives the same key, with as many certificates for it as you like.
Certificates are cheap (~1 ms) and made fresh on each call, relative to ``now`` (default: the
real clock), so that validity tests do not depend on when the process started.

    pki = TestPki.create()
    gateway, partner = pki.gateway, pki.partner          # valid, for signing and encryption
    expired = pki.ca.issue("Gammel lege", not_after=NOW - timedelta(days=1))
    signing_only = pki.ca.issue("Lege", usage=Usage.SIGNING)
    stranger = TestCa.create("Another CA").issue("Lege", key_name="partner")  # same key!
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from gateway.security.cms import DecryptionKey
from gateway.security.xmldsig import Signer

__all__ = ["Credentials", "TestCa", "TestPki", "Usage", "rsa_key"]


class Usage(enum.Enum):
    """The KeyUsage of an issued certificate."""

    SIGNING = "signing"
    """nonRepudiation + digitalSignature (a Norwegian signing certificate)."""
    ENCRYPTION = "encryption"
    """keyEncipherment + dataEncipherment (a Norwegian encryption certificate)."""
    BOTH = "both"
    """All of the above: one certificate for everything, the simplest setup for tests."""
    NON_REPUDIATION_ONLY = "non-repudiation-only"
    """Only nonRepudiation, exactly as Buypass business signing certificates have it."""
    CERT_SIGN_ONLY = "cert-sign-only"
    """keyCertSign only: usable for neither signing messages nor encryption."""
    NONE = "none"
    """No KeyUsage extension at all (unrestricted, RFC 5280)."""


@functools.cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """An RSA-2048 key, the same one for the same ``name`` within this process."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A key and the certificate issued for it, plus the issuing CA's certificate."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    issuer: x509.Certificate

    @property
    def key_pem(self) -> bytes:
        """The key as unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)

    def signer(self) -> Signer:
        """A ``Signer`` with this key and certificate."""
        return Signer(self.key, self.certificate)

    def decryption_key(self) -> DecryptionKey:
        """A ``DecryptionKey`` with this key and certificate."""
        return DecryptionKey(self.key, self.certificate)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.key.pem`` (mode 0600) and ``<stem>.cert.pem``; return both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = directory / f"{stem}.key.pem", directory / f"{stem}.cert.pem"
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem)
        cert_path.write_bytes(self.cert_pem)
        return key_path, cert_path


@dataclass(frozen=True, slots=True)
class TestCa:
    """A self-signed test CA that issues end-entity certificates."""

    __test__ = False  # not a pytest test class, despite the name

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str = "Gateway Test CA", *, key_name: str | None = None) -> TestCa:
        """A CA named ``name`` (its key cached under ``key_name``, default the name)."""
        key = rsa_key(key_name or f"ca:{name}")
        now = datetime.now(UTC)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gateway Test"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=3650))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def issue(
        self,
        common_name: str,
        *,
        key_name: str | None = None,
        usage: Usage = Usage.BOTH,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        organisation: str = "Testpraksis AS",
        her_id: str | None = None,
        now: datetime | None = None,
    ) -> Credentials:
        """An end-entity certificate for the key cached as ``key_name`` (default the CN).

        Valid from a day before ``now`` for two years unless ``not_before``/``not_after`` say
        otherwise (pass dates in the past or future for expired / not-yet-valid certificates).
        """
        key = rsa_key(key_name or common_name)
        now = now or datetime.now(UTC)
        attributes = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
        if her_id is not None:
            attributes.append(
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"HER-id {her_id}")
            )
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(days=1))
            .not_valid_after(not_after or now + timedelta(days=730))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        key_usage = _usage_extension(usage)
        if key_usage is not None:
            builder = builder.add_extension(key_usage, critical=True)
        certificate = builder.sign(self.key, hashes.SHA256())
        return Credentials(key, certificate, self.certificate)


@dataclass(frozen=True, slots=True)
class TestPki:
    """The usual cast: a CA, the gateway (current and previous key) and one partner."""

    __test__ = False

    ca: TestCa
    gateway: Credentials
    gateway_previous: Credentials
    partner: Credentials

    @classmethod
    def create(cls, now: datetime | None = None) -> TestPki:
        """A fresh set of certificates (keys come from the per-process cache)."""
        ca = TestCa.create()
        return cls(
            ca=ca,
            gateway=ca.issue("HELFO test", her_id="79768", organisation="HELFO", now=now),
            gateway_previous=ca.issue(
                "HELFO test (forrige)", key_name="gateway-previous", organisation="HELFO", now=now
            ),
            partner=ca.issue("Testlegen", key_name="partner", her_id="8141253", now=now),
        )


def _usage_extension(usage: Usage) -> x509.KeyUsage | None:
    match usage:
        case Usage.SIGNING:
            return _key_usage(digital_signature=True, non_repudiation=True)
        case Usage.ENCRYPTION:
            return _key_usage(key_encipherment=True, data_encipherment=True)
        case Usage.BOTH:
            return _key_usage(
                digital_signature=True,
                non_repudiation=True,
                key_encipherment=True,
                data_encipherment=True,
            )
        case Usage.NON_REPUDIATION_ONLY:
            return _key_usage(non_repudiation=True)
        case Usage.CERT_SIGN_ONLY:
            return _key_usage(cert_sign=True)
        case Usage.NONE:
            return None


def _key_usage(
    *,
    digital_signature: bool = False,
    non_repudiation: bool = False,
    key_encipherment: bool = False,
    data_encipherment: bool = False,
    cert_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=key_encipherment,
        data_encipherment=data_encipherment,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
