"""A small OpenID provider on localhost for the console's OIDC login tests: discovery, JWKS,
an authorization endpoint that logs in whoever the test says (no page), and a token endpoint
that checks the code, the redirect URI, the client and the PKCE verifier and answers with an ID
token signed by a test key.

    with OidcProvider() as provider:
        provider.user = {"preferred_username": "siri", "groups": ["kuhr-drift"]}
        ...                                  # the console's [web.oidc] issuer = provider.issuer
        provider.tamper = {"nonce": "other"}  # the next ID token says so

Every request is kept in ``provider.requests`` (path, query or form) for the tests to look at.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "kuhr-konsoll"
CLIENT_SECRET = "hemmelig-klient-passord"
KID = "oidc-test-1"


@functools.cache
def signing_key(name: str = "provider") -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Grant:
    """An authorization code handed out and not yet redeemed."""

    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    method: str | None
    user: dict[str, Any]


@dataclass
class OidcProvider:
    """The provider; ``issuer`` is ``http://127.0.0.1:<port>`` once started."""

    user: dict[str, Any] = field(default_factory=dict)
    #: Claims (or ``None`` to drop one) changed in the next ID tokens.
    tamper: dict[str, Any] = field(default_factory=dict)
    lifetime: timedelta = timedelta(minutes=5)
    key: rsa.RSAPrivateKey = field(default_factory=signing_key)
    client_secret: str | None = CLIENT_SECRET
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)
    token_errors: list[str] = field(default_factory=list)
    #: The issuer's host name: ``localhost`` makes it another site than the console on
    #: 127.0.0.1 (what a browser's SameSite rules see), on the same loopback address.
    host: str = "127.0.0.1"
    #: Show a page with a link back, as a real provider's login page is (the browser then
    #: comes back on a navigation the provider's site started), instead of redirecting at once.
    page: bool = False

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def __enter__(self) -> OidcProvider:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    # --- what the endpoints answer -----------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key().public_key()))
        public.update(kid=KID, use="sig", alg="RS256")
        return {"keys": [public]}

    def authorize(self, query: dict[str, str]) -> str:
        """Log the test's user in at once; the redirect back (with code and state)."""
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            query.get("client_id", ""),
            query.get("redirect_uri", ""),
            query.get("nonce"),
            query.get("code_challenge"),
            query.get("code_challenge_method"),
            dict(self.user),
        )
        back = {"code": code, "state": query.get("state", "")}
        return query.get("redirect_uri", "") + "?" + urlencode(back)

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        grant = self.grants.pop(form.get("code", ""), None)
        problem = self._problem(grant, form, authorization)
        if problem is not None:
            self.token_errors.append(problem)
            return 400, {"error": problem}
        assert grant is not None
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "sub-" + str(grant.user.get("preferred_username")),
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + self.lifetime,
            "nonce": grant.nonce,
            **grant.user,
        }
        for name, value in self.tamper.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})
        return 200, {
            "access_token": "at-" + secrets.token_hex(8),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": token,
        }

    def _problem(self, grant: Grant | None, form: dict[str, str], auth: str) -> str | None:
        if form.get("grant_type") != "authorization_code" or grant is None:
            return "invalid_grant"
        if self.client_secret is not None:
            expected = base64.b64encode(f"{CLIENT_ID}:{self.client_secret}".encode()).decode()
            if auth != "Basic " + expected:
                return "invalid_client"
        if form.get("redirect_uri") != grant.redirect_uri or grant.client_id != CLIENT_ID:
            return "invalid_grant"
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if grant.method != "S256" or grant.challenge != (
            base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        ):
            return "invalid_grant"  # PKCE (RFC 7636 4.6)
        return None


def _handler(provider: OidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            provider.requests.append((parts.path, query))
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif parts.path == "/jwks":
                self._json(200, provider.jwks())
            elif parts.path == "/authorize" and provider.page:
                back = html.escape(provider.authorize(query))
                body = f'<!doctype html><title>IdP</title><a href="{back}">Fortsett</a>'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif parts.path == "/authorize":
                self.send_response(302)
                self.send_header("Location", provider.authorize(query))
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(body).items()}
            provider.requests.append((self.path, form))
            if self.path != "/token":
                self._json(404, {"error": "not_found"})
                return
            status, answer = provider.token(form, self.headers.get("Authorization", ""))
            self._json(status, answer)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def oidc_section(provider: OidcProvider, console_base: str, secret_file: str | None) -> str:
    """A ``[web.oidc]`` table for ``provider``, the console's callback under ``console_base``."""
    text = (
        f'\n[web.oidc]\nissuer = "{provider.issuer}"\nclient_id = "{CLIENT_ID}"\n'
        f'redirect_uri = "{console_base}/oidc/tilbake"\nroles_claim = "groups"\n'
        'label = "Testleverandøren"\n'
    )
    if secret_file is not None:
        text += f'client_secret_file = "{secret_file}"\n'
    return text + (
        '[web.oidc.roles]\n"kuhr-saksbehandlere" = "saksbehandler"\n'
        '"kuhr-drift" = ["drift"]\n"kuhr-revisjon" = ["revisor", "drift"]\n'
    )
