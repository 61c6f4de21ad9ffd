"""Who is asking the claim status API: a sender, proved by a signed JWT from the configured
issuer (as HelseID issues them), or by mutual TLS with a certificate from the sender's CPA.

``SenderAuth.sender(request)`` returns the sender's HER id, or None: the API then answers 401
and names nothing. It fails closed: a token that is present but wrong is not rescued by a
certificate, an unknown claim value is nobody, and a certificate not found in any CPA (or out of
its validity) is nobody.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio.to_thread
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from starlette.requests import Request

from gateway.config import Config
from gateway.logs import get_logger
from gateway.partners.registry import PartnerRegistry
from gateway.web.config import ApiConfig

log = get_logger("web.api.auth")

#: Clock skew allowed on ``exp``/``nbf``/``iat``.
LEEWAY_SECONDS = 30


class JwksKeys:
    """The issuer's signing keys: a JWKS file read once, or a URL fetched and cached."""

    def __init__(self, *, url: str | None = None, file: Path | None = None) -> None:
        self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300) if url else None
        self._set = jwt.PyJWKSet.from_dict(json.loads(file.read_text("utf-8"))) if file else None

    def key_for(self, token: str) -> Any:
        """The key the token's ``kid`` names (blocking for a URL: call in a thread)."""
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        assert self._set is not None
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._set.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise jwt.InvalidKeyError("no key with this kid")


def fingerprint(certificate: x509.Certificate) -> bytes:
    return certificate.fingerprint(hashes.SHA256())


class SenderAuth:
    """Maps a request to the sender it authenticates, or None."""

    def __init__(
        self,
        api: ApiConfig,
        *,
        keys: JwksKeys | None = None,
        partners: PartnerRegistry | None = None,
        own_her_id: str | None = None,
    ) -> None:
        self.api = api
        self.keys = keys
        self._by_fingerprint: dict[bytes, tuple[str, x509.Certificate]] = {}
        if partners is not None and api.mtls:
            for cpa in partners:
                for party in cpa.parties:
                    her = party.her_id
                    if her is None or her == own_her_id:
                        continue
                    # Every certificate the CPA holds for the party, rollover ones included.
                    for certificate in party.all_certificates:
                        self._by_fingerprint[fingerprint(certificate)] = (her, certificate)

    @classmethod
    def from_config(cls, config: Config, api: ApiConfig) -> SenderAuth:
        keys = None
        if api.jwt_enabled:
            keys = JwksKeys(url=api.jwks_url, file=api.jwks_file)
        partners = None
        if api.mtls and config.partners.directory is not None:
            partners = PartnerRegistry.load(config.partners.directory)
        return cls(api, keys=keys, partners=partners, own_her_id=config.identity.her_id)

    async def sender(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            return await self._from_token(token.strip())
        if self.api.mtls:
            return self._from_certificate(self._client_certificate(request))
        return None

    async def _from_token(self, token: str) -> str | None:
        if self.keys is None or self.api.jwt_issuer is None:
            return None
        try:
            key = await anyio.to_thread.run_sync(self.keys.key_for, token)
            claims: Mapping[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(self.api.jwt_algorithms),
                audience=self.api.jwt_audience,
                issuer=self.api.jwt_issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            log.info("api_token_refused", reason=type(exc).__name__)
            return None
        value = claims.get(self.api.sender_claim)
        if not isinstance(value, str | int) or isinstance(value, bool):
            return None
        text = str(value)
        if self.api.senders:
            return self.api.senders.get(text)
        return text if text.isdigit() else None

    def _client_certificate(self, request: Request) -> x509.Certificate | None:
        pem: str | None = None
        tls = request.scope.get("extensions", {}).get("tls") or {}
        chain = tls.get("client_cert_chain") or []
        if chain:
            pem = str(chain[0])
        elif (
            self.api.client_cert_header
            and request.client is not None
            and request.client.host in self.api.trusted_proxies
        ):
            raw = request.headers.get(self.api.client_cert_header, "")
            pem = unquote(raw) if raw else None
        if not pem:
            return None
        try:
            return x509.load_pem_x509_certificate(pem.encode("ascii"))
        except ValueError:
            return None

    def _from_certificate(self, certificate: x509.Certificate | None) -> str | None:
        if certificate is None:
            return None
        found = self._by_fingerprint.get(fingerprint(certificate))
        if found is None:
            return None
        her, known = found
        now = datetime.now(UTC)
        if not known.not_valid_before_utc <= now <= known.not_valid_after_utc:
            return None
        return her
