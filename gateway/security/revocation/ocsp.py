"""OCSP (RFC 6960): ask the issuer's responder about one certificate; believe only a sound answer.

``query`` builds a request for the certificate (SHA-1 CertID, as every responder understands it,
with a random nonce), POSTs it, and hands the answer to ``read_response``, which accepts it only
if:

- the response status is ``successful`` and one of its single responses is about exactly this
  certificate (serial number, issuer name hash and issuer key hash);
- it is signed by the issuer itself, or by a delegated responder whose certificate is included,
  was issued directly by the issuer, carries the ``OCSPSigning`` extended key usage and is valid
  now (RFC 6960 §4.2.2.2);
- if the response echoes a nonce, it is ours; if it does not (responders serving pre-produced
  answers do not), its ``thisUpdate`` is at most ``max_age`` old;
- ``thisUpdate`` is not in the future and ``nextUpdate``, if given, not in the past.

Anything else raises ``RevocationSourceError``: the checker then falls back to the CRL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from gateway.security.revocation.crl import CLOCK_SKEW
from gateway.security.revocation.fetch import RevocationSourceError, http_post
from gateway.security.revocation.issuers import Issuer

__all__ = ["OcspAnswer", "build_request", "ocsp_url", "query", "read_response"]

_MAX_RESPONSE_BYTES: Final = 1024 * 1024
_NONCE_BYTES: Final = 16

CertStatus = Literal["good", "revoked", "unknown"]


@dataclass(frozen=True, slots=True)
class OcspAnswer:
    """What a verified OCSP response says about one certificate."""

    status: CertStatus
    this_update: datetime
    next_update: datetime | None
    revoked_at: datetime | None = None


def ocsp_url(cert: x509.Certificate) -> str | None:
    """The first http(s) OCSP address in ``cert``'s AuthorityInfoAccess, if any."""
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for description in access:
        location = description.access_location
        if (
            description.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(location, x509.UniformResourceIdentifier)
            and location.value.lower().startswith(("http://", "https://"))
        ):
            return location.value
    return None


def build_request(cert: x509.Certificate, issuer: Issuer) -> tuple[bytes, bytes]:
    """The DER request for ``cert`` and the nonce in it."""
    nonce = os.urandom(_NONCE_BYTES)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer.certificate, hashes.SHA1())  # noqa: S303 - CertID, not security
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    return request.public_bytes(Encoding.DER), nonce


def query(
    cert: x509.Certificate,
    issuer: Issuer,
    url: str,
    *,
    now: datetime,
    max_age: timedelta,
    timeout: float,
) -> OcspAnswer:
    """Ask the responder at ``url`` about ``cert``; ``RevocationSourceError`` if no usable
    answer comes back."""
    request, nonce = build_request(cert, issuer)
    data = http_post(
        url,
        request,
        content_type="application/ocsp-request",
        accept="application/ocsp-response",
        timeout=timeout,
        max_bytes=_MAX_RESPONSE_BYTES,
    )
    return read_response(data, cert, issuer, nonce=nonce, now=now, max_age=max_age, url=url)


def read_response(
    data: bytes,
    cert: x509.Certificate,
    issuer: Issuer,
    *,
    nonce: bytes | None,
    now: datetime,
    max_age: timedelta,
    url: str = "OCSP",
) -> OcspAnswer:
    """The verified answer about ``cert`` in the DER response ``data`` (module docstring)."""
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError as exc:
        raise RevocationSourceError(f"{url}: not an OCSP response: {exc}") from exc
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RevocationSourceError(f"{url}: responder says {response.response_status.name}")
    single = _single_response_for(response, cert, issuer, url)
    _check_signature(response, issuer, now, url)
    _check_freshness(response, single, nonce, now, max_age, url)
    status: CertStatus
    match single.certificate_status:
        case ocsp.OCSPCertStatus.GOOD:
            status = "good"
        case ocsp.OCSPCertStatus.REVOKED:
            status = "revoked"
        case _:
            status = "unknown"
    return OcspAnswer(
        status=status,
        this_update=single.this_update_utc,
        next_update=single.next_update_utc,
        revoked_at=single.revocation_time_utc if status == "revoked" else None,
    )


def _single_response_for(
    response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: Issuer, url: str
) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        expected = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert, issuer.certificate, single.hash_algorithm)
            .build()
        )
        if (
            single.serial_number == cert.serial_number
            and single.issuer_name_hash == expected.issuer_name_hash
            and single.issuer_key_hash == expected.issuer_key_hash
        ):
            return single
    raise RevocationSourceError(f"{url}: the response is not about this certificate")


def _check_signature(response: ocsp.OCSPResponse, issuer: Issuer, now: datetime, url: str) -> None:
    signer = _responder(response, issuer, now, url)
    hash_algorithm = response.signature_hash_algorithm
    if hash_algorithm is None:
        raise RevocationSourceError(f"{url}: unsupported response signature algorithm")
    key = signer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), hash_algorithm
            )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hash_algorithm))
        else:
            raise RevocationSourceError(f"{url}: unsupported responder key type")
    except (InvalidSignature, UnsupportedAlgorithm, ValueError) as exc:
        raise RevocationSourceError(f"{url}: the response's signature does not verify") from exc


def _responder(
    response: ocsp.OCSPResponse, issuer: Issuer, now: datetime, url: str
) -> x509.Certificate:
    """The certificate that signed ``response``: the issuer's, or a delegated responder's."""
    if _names(response, issuer.certificate):
        return issuer.certificate
    for candidate in response.certificates:
        if not _names(response, candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer.certificate)
            usage = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
            raise RevocationSourceError(
                f"{url}: the responder certificate is not a delegated OCSP responder of "
                f"{issuer.name}"
            ) from exc
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usage:
            raise RevocationSourceError(f"{url}: the responder certificate lacks OCSPSigning")
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            raise RevocationSourceError(f"{url}: the responder certificate is not valid now")
        return candidate
    raise RevocationSourceError(f"{url}: the response is signed by an unknown responder")


def _names(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """True if the response's ResponderID names ``cert`` (by name or by key hash)."""
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_hash = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    return response.responder_key_hash == key_hash


def _check_freshness(
    response: ocsp.OCSPResponse,
    single: ocsp.OCSPSingleResponse,
    nonce: bytes | None,
    now: datetime,
    max_age: timedelta,
    url: str,
) -> None:
    echoed = None
    for extension in response.extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            echoed = extension.value.nonce
    if echoed is not None and nonce is not None and echoed != nonce:
        raise RevocationSourceError(f"{url}: the response's nonce is not ours (a replay?)")
    if echoed is None and now - single.this_update_utc > max_age:
        raise RevocationSourceError(
            f"{url}: the response without nonce is from {single.this_update_utc:%Y-%m-%d %H:%M}, "
            f"older than {max_age}"
        )
    if single.this_update_utc > now + CLOCK_SKEW:
        raise RevocationSourceError(f"{url}: the response's thisUpdate is in the future")
    if single.next_update_utc is not None and single.next_update_utc < now - CLOCK_SKEW:
        raise RevocationSourceError(f"{url}: the response's nextUpdate has passed")
