"""The OpenID provider over HTTP: its discovery document, its signing keys (JWKS) and its token
endpoint. Blocking (``urllib``): the pages call it in a worker thread.

Why the standard library: httpx is a development dependency only, and these are three small
requests per login at most (the discovery document and the keys are cached). The opener speaks
http and https only and follows no redirect; every body is cut off at ``MAX_BYTES``. Every URL
was checked to be https (or loopback http) before it is asked.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import jwt

from gateway.errors import ConfigurationError, TransportError
from gateway.web.oidc.config import OidcConfig, secure_url

#: Largest answer read from the provider (discovery, JWKS, token): they are a few kilobytes.
MAX_BYTES = 512 * 1024
#: How long the discovery document and the keys are used before they are asked for again.
CACHE_SECONDS = 3600.0
#: An unknown key id makes the keys be fetched again, but not more often than this.
REFETCH_SECONDS = 30.0


class ProviderError(TransportError):
    """The provider could not be reached or answered something unusable (English, for the log;
    never holds a code, a token or the client secret)."""


class ProviderRefused(ProviderError):
    """The provider answered, and said no (HTTP 400 or 401: a code it does not know, a client
    it does not accept)."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What the discovery document says, checked."""

    authorization: str
    token: str
    jwks_uri: str


Fetch = Callable[[urllib.request.Request, float], bytes]


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(context=ssl.create_default_context()),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        opener.add_handler(handler)
    return opener


def fetch(request: urllib.request.Request, timeout: float) -> bytes:
    """The body of ``request``'s answer (2xx only, no redirects, at most ``MAX_BYTES``)."""
    url = request.full_url
    if not secure_url(url):
        raise ProviderError(f"{url}: not an https:// URL (or http:// on the loopback interface)")
    try:
        with _opener().open(request, timeout=timeout) as response:
            body: bytes = response.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        kind = ProviderRefused if exc.code in (400, 401) else ProviderError
        raise kind(f"{url}: HTTP {exc.code}{_oauth_error(exc)}") from exc
    except urllib.error.URLError as exc:
        raise ProviderError(f"{url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise ProviderError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if len(body) > MAX_BYTES:
        raise ProviderError(f"{url}: the answer is larger than {MAX_BYTES} bytes")
    return body


def _oauth_error(exc: urllib.error.HTTPError) -> str:
    """The OAuth ``error`` code of an error answer (RFC 6749 5.2), if it has one."""
    try:
        found = json.loads(exc.read(4096)).get("error")
    except (ValueError, AttributeError, OSError):
        return ""
    return f" ({found})" if isinstance(found, str) and found.isprintable() else ""


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise ProviderError(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise ProviderError(f"{what} is not a JSON object")
    return value


class Provider:
    """One configured issuer; safe to use from several threads."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        fetch: Fetch = fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._endpoints: tuple[float, Endpoints] | None = None
        self._keys: tuple[float, jwt.PyJWKSet] | None = None

    def _get(self, url: str, what: str) -> dict[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        return _json(self._fetch(request, self.config.timeout), what)

    def endpoints(self) -> Endpoints:
        """The discovery document's endpoints (cached ``CACHE_SECONDS``)."""
        with self._lock:
            if self._endpoints is not None and self._clock() - self._endpoints[0] < CACHE_SECONDS:
                return self._endpoints[1]
        issuer = self.config.issuer
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get(url, "the discovery document")
        if document.get("issuer") != issuer:
            # OpenID Connect Discovery 4.3: the document must be the issuer's own.
            raise ProviderError(
                f"{url}: the document names issuer {document.get('issuer')!r}, not {issuer!r}"
            )
        found: dict[str, str] = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or not secure_url(value):
                raise ProviderError(f"{url}: {name} is not an https:// URL: {value!r}")
            found[name] = value
        types = document.get("response_types_supported")
        if isinstance(types, list) and "code" not in types:
            raise ProviderError(f"{url}: the provider does not offer the authorization code flow")
        endpoints = Endpoints(
            found["authorization_endpoint"], found["token_endpoint"], found["jwks_uri"]
        )
        with self._lock:
            self._endpoints = (self._clock(), endpoints)
        return endpoints

    def key_for(self, token: str) -> Any:
        """The provider's public key that the token's header names (``kid``); the keys are
        fetched again once when the id is unknown (the provider rolled its key)."""
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        for attempt in range(2):
            keys = self._key_set(refresh=attempt == 1)
            if keys is None:
                break
            candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
            if len(candidates) == 1 or (candidates and kid is not None):
                return candidates[0].key
        raise jwt.InvalidKeyError(f"the provider has no key with id {kid!r}")

    def _key_set(self, *, refresh: bool) -> jwt.PyJWKSet | None:
        with self._lock:
            cached = self._keys
        age = None if cached is None else self._clock() - cached[0]
        if cached is not None and age is not None:
            if not refresh and age < CACHE_SECONDS:
                return cached[1]
            if refresh and age < REFETCH_SECONDS:
                return None  # just fetched: an unknown id stays unknown
        document = self._get(self.endpoints().jwks_uri, "the JWKS document")
        try:
            keys = jwt.PyJWKSet.from_dict(document)
        except jwt.PyJWTError as exc:
            raise ProviderError(f"the JWKS document has no usable key: {exc}") from exc
        with self._lock:
            self._keys = (self._clock(), keys)
        return keys

    def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        """The token endpoint's answer for an authorization code (with its PKCE verifier)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
            "code_verifier": verifier,
            "client_id": self.config.client_id,
        }
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if self.config.confidential:
            try:
                secret = self.config.client_secret()
            except ConfigurationError as exc:
                raise ProviderError(str(exc)) from exc
            # RFC 6749 2.3.1: both parts form-encoded before the Basic encoding.
            pair = f"{quote(self.config.client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - the URL is checked in fetch
            self.endpoints().token, data=urlencode(form).encode(), headers=headers, method="POST"
        )
        answer = _json(self._fetch(request, self.config.timeout), "the token answer")
        if not isinstance(answer.get("id_token"), str):
            raise ProviderError("the token answer has no id_token (is 'openid' a scope?)")
        return answer
