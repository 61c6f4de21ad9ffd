"""A PKI with revocation for tests: root and intermediate CA, partner certificates that name a
CRL distribution point and an OCSP responder on localhost, the CRLs and OCSP answers themselves,
and the HTTP server (``http.server`` in a thread) that serves them.

    with RevocationServer() as server:
        pki = RevocationPki.create(server.base_url)
        partner = pki.issue("Testlegen")
        server.serve_crl(pki.crl(revoked=[partner]))
        server.serve_ocsp(pki.ocsp_responder(revoked={partner.certificate.serial_number: ...}))

Keys are cached per name for the process (RSA is the slow part); certificates are fresh.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from gateway.security.xmldsig import Signer

CRL_PATH = "/crl/intermediate.crl"
OCSP_PATH = "/ocsp"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@functools.cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """An RSA-2048 key, the same one for the same ``name`` within this process."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ec_key(name: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key, the same one for the same ``name`` within this process."""
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organisation: str = "Revocation Test") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its key."""

    key: PrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)

    def signer(self) -> Signer:
        assert isinstance(self.key, rsa.RSAPrivateKey)
        return Signer(self.key, self.certificate)


@dataclass(frozen=True, slots=True)
class RevocationPki:
    """A root CA, an intermediate that issues partner certificates, CRLs and OCSP answers."""

    base_url: str
    root: Issued
    intermediate: Issued
    now: datetime

    @classmethod
    def create(
        cls, base_url: str, *, now: datetime | None = None, label: str = ""
    ) -> RevocationPki:
        """The two CAs; ``label`` makes a second, unrelated PKI with the same names."""
        now = now or datetime.now(UTC)
        root_key = ec_key(f"root{label}")
        root_name = _name("Revocation Test Root CA")
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=3650))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        key = rsa_key(f"intermediate{label}")
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name("Revocation Test Class 3 CA"))
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1000))
            .not_valid_after(now + timedelta(days=1000))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(root_key, hashes.SHA256())
        )
        return cls(base_url, Issued(root_key, root), Issued(key, intermediate), now)

    @property
    def crl_url(self) -> str:
        return self.base_url + CRL_PATH

    @property
    def ocsp_url(self) -> str:
        return self.base_url + OCSP_PATH

    def write_issuers(self, directory: Path) -> Path:
        """The intermediate (PEM) and the root (DER) into ``directory``; returns it."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "intermediate.pem").write_bytes(self.intermediate.pem)
        (directory / "root.der").write_bytes(self.root.certificate.public_bytes(Encoding.DER))
        return directory

    def issue(
        self,
        common_name: str,
        *,
        key_name: str | None = None,
        crl_urls: Sequence[str] | None = None,
        ocsp_url: str | Literal["default"] | None = "default",
    ) -> Issued:
        """A partner signing certificate (RSA, nonRepudiation + digitalSignature) naming the
        CRL (``crl_urls``, default this PKI's) and the OCSP responder (default this PKI's)."""
        key = rsa_key(key_name or common_name)
        urls = [self.crl_url] if crl_urls is None else list(crl_urls)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, "Testpraksis AS"))
            .issuer_name(self.intermediate.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(days=1))
            .not_valid_after(self.now + timedelta(days=700))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        if urls:
            points = [
                x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None)
                for u in urls
            ]
            builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
        responder = self.ocsp_url if ocsp_url == "default" else ocsp_url
        if responder is not None:
            access = x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(responder)
            )
            builder = builder.add_extension(x509.AuthorityInformationAccess([access]), False)
        return Issued(key, builder.sign(self.intermediate.key, hashes.SHA256()))

    def crl(
        self,
        revoked: Sequence[Issued | tuple[Issued, datetime]] = (),
        *,
        this_update: datetime | None = None,
        next_update: datetime | None = None,
        signed_by: PrivateKey | None = None,
    ) -> bytes:
        """A DER CRL of the intermediate listing ``revoked`` (revoked an hour before
        ``this_update``, or when given), from ``this_update`` (a minute before the PKI's ``now``)
        to ``next_update`` (a day later). Times follow ``now``, not the clock, so that a test run
        late in a long suite sees the same."""
        this_update = this_update or self.now - timedelta(minutes=1)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.intermediate.certificate.subject)
            .last_update(this_update)
            .next_update(next_update or this_update + timedelta(days=1))
        )
        for entry in revoked:
            issued, when = (
                entry if isinstance(entry, tuple) else (entry, this_update - timedelta(hours=1))
            )
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(issued.certificate.serial_number)
                .revocation_date(when)
                .build()
            )
        key = signed_by or self.intermediate.key
        return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)

    def delegated_responder(self, *, ocsp_signing: bool = True) -> Issued:
        """An OCSP responder certificate (EC) issued by the intermediate."""
        key = ec_key("ocsp-responder")
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name("Revocation Test OCSP responder"))
            .issuer_name(self.intermediate.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(days=1))
            .not_valid_after(self.now + timedelta(days=30))
        )
        usage = (
            ExtendedKeyUsageOID.OCSP_SIGNING if ocsp_signing else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return Issued(key, builder.sign(self.intermediate.key, hashes.SHA256()))


OcspStatus = Literal["good", "revoked", "unknown"]


@dataclass
class OcspResponder:
    """Answers OCSP requests for a ``RevocationPki``: ``statuses`` by serial (default good)."""

    pki: RevocationPki
    statuses: dict[int, OcspStatus] = field(default_factory=dict)
    responder: Issued | None = None
    """Sign as this delegated responder (its certificate included); default the issuer."""
    impostor: Issued | None = None
    """Sign as this one instead, its certificate not included (an answer from nobody we know)."""
    corrupt: bool = False
    """Flip a bit of the signature (a forged or damaged answer)."""
    nonce: Literal["echo", "none", "wrong"] = "echo"
    this_update: datetime | None = None
    requests: int = 0

    def __call__(self, body: bytes) -> tuple[int, bytes]:
        self.requests += 1
        request = ocsp.load_der_ocsp_request(body)
        status = self.statuses.get(request.serial_number, "good")
        now = self.pki.now
        this_update = self.this_update or now - timedelta(minutes=1)
        cert_status = {
            "good": ocsp.OCSPCertStatus.GOOD,
            "revoked": ocsp.OCSPCertStatus.REVOKED,
            "unknown": ocsp.OCSPCertStatus.UNKNOWN,
        }[status]
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=cert_status,
            this_update=this_update,
            next_update=this_update + timedelta(hours=4),
            revocation_time=now - timedelta(hours=2) if status == "revoked" else None,
            revocation_reason=x509.ReasonFlags.key_compromise if status == "revoked" else None,
        )
        signer = self.impostor or self.responder or self.pki.intermediate
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
        if self.responder is not None:
            builder = builder.certificates([self.responder.certificate])
        nonces = [e.value for e in request.extensions if isinstance(e.value, x509.OCSPNonce)]
        if self.nonce == "echo" and nonces:
            builder = builder.add_extension(nonces[0], critical=False)
        elif self.nonce == "wrong":
            builder = builder.add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False)
        der = builder.sign(signer.key, hashes.SHA256()).public_bytes(Encoding.DER)
        if self.corrupt:  # without certificates, the signature is the last field
            der = der[:-1] + bytes([der[-1] ^ 1])
        return 200, der


Route = Callable[[bytes], tuple[int, bytes]]


class RevocationServer:
    """``http.server`` on 127.0.0.1 in a thread, serving whatever ``routes`` say per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.redirects: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length))

            def _answer(self, body: bytes) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route = server.routes.get(self.path)
                status, data = route(body) if route is not None else (404, b"not here")
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet tests

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve_crl(self, crl: bytes, path: str = CRL_PATH) -> None:
        self.routes[path] = lambda _body: (200, crl)

    def serve_ocsp(self, responder: Route, path: str = OCSP_PATH) -> None:
        self.routes[path] = responder

    def fail(self, path: str, status: int = 503) -> None:
        """``path`` answers ``status`` from now on (a responder that is down)."""
        self.routes[path] = lambda _body: (status, b"down")

    def __enter__(self) -> RevocationServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
