"""One console login with OpenID Connect: the authorization code flow with PKCE.

1. ``OidcLogin.begin`` makes a ``Pending`` login: a random ``state`` (also put in the browser's
   flow cookie, so the answer must come back to the browser that asked), a ``nonce`` (which the
   ID token must carry) and a PKCE verifier (whose S256 challenge goes to the provider), and
   gives the provider's authorization URL.
2. The provider sends the browser back with ``code`` and ``state``. ``OidcLogin.take`` finds the
   pending login by its state, once: a state that is unknown, expired, used before or not the
   cookie's is refused before anything is asked of the provider.
3. ``OidcLogin.finish`` exchanges the code (with the verifier) at the token endpoint and checks
   the ID token: signed by a key of the provider's JWKS with an allowed algorithm, ``iss`` the
   issuer, ``aud`` our client id (``azp`` too when there are several audiences), within
   ``exp``/``iat``/``nbf``, and carrying our nonce. Then the user name and the roles are read
   from their claims; a user whose claim values map to no console role is refused.

Pending logins are kept in memory (``gateway web`` is one process): a restart in between makes
the user start again. They expire after ``PENDING_SECONDS``; at most ``MAX_PENDING`` are kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt

from gateway.users.roles import Role
from gateway.web.oidc.config import OidcConfig
from gateway.web.oidc.provider import Provider, ProviderError, ProviderRefused

#: How long a user has at the provider before the login must be started again.
PENDING_SECONDS = 600.0
MAX_PENDING = 10_000
#: Clock skew allowed on ``exp``/``iat``/``nbf``.
LEEWAY_SECONDS = 30
#: Console user names of OIDC users start with this; local names cannot contain ':'.
USERNAME_PREFIX = "oidc:"


class LoginRefused(Exception):
    """The login cannot be completed: ``reason`` for the log and the audit (English, no
    secrets), ``text`` for the user (Norwegian), the HTTP ``status``, and the user name when
    the ID token was good enough to know it."""

    def __init__(self, reason: str, text: str, status: int, username: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.text = text
        self.status = status
        self.username = username


_EXPIRED = "Innloggingen var utløpt eller ugyldig. Prøv igjen."
_UNCONFIRMED = "Innloggingen kunne ikke bekreftes. Prøv igjen, eller kontakt drift."
_UNAVAILABLE = "Innloggingstjenesten svarer ikke nå. Prøv igjen om litt, eller bruk passord."


def unavailable(exc: ProviderError) -> LoginRefused:
    return LoginRefused(f"provider: {exc}", _UNAVAILABLE, 503)


@dataclass(frozen=True, slots=True)
class Pending:
    """A login sent to the provider and not yet back."""

    state: str
    nonce: str
    verifier: str
    next_path: str
    started: float


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the ID token says logged in, as the console knows them."""

    username: str  # USERNAME_PREFIX + the username claim, lower case
    display_name: str
    roles: tuple[Role, ...]
    subject: str


def challenge(verifier: str) -> str:
    """The PKCE S256 code challenge of ``verifier`` (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to the query it may already have."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at ``path``, dotted for nested objects (``realm_access.roles``); None if
    absent. A claim whose own name has a dot is found as it is first."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def roles_of(claims: Mapping[str, Any], config: OidcConfig) -> tuple[Role, ...]:
    """The console roles that the values of ``roles_claim`` map to (a list, or one string)."""
    value = claim(claims, config.roles_claim)
    values: Sequence[Any] = [value] if isinstance(value, str) else value
    if not isinstance(values, list | tuple):
        return ()
    found: set[Role] = set()
    for item in values:
        if isinstance(item, str):
            found.update(config.roles.get(item, ()))
    return tuple(sorted(found))


def _text(value: Any, limit: int) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
        return value.strip() or None
    return None


class OidcLogin:
    """Logins with one provider: the pending ones, and finishing one."""

    def __init__(
        self,
        config: OidcConfig,
        provider: Provider | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.provider = provider or Provider(config)
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, Pending] = OrderedDict()

    # --- 1. off to the provider ----------------------------------------------------------------

    def begin(self, next_path: str) -> tuple[Pending, str]:
        """A new pending login and the provider's authorization URL for it (blocking: the
        discovery document may be fetched; ``ProviderError`` if it cannot be)."""
        endpoint = self.provider.endpoints().authorization
        pending = Pending(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),  # 86 characters: RFC 7636 wants 43 to 128
            next_path=next_path,
            started=self._clock(),
        )
        with self._lock:
            self._forget_expired()
            while len(self._pending) >= MAX_PENDING:
                self._pending.popitem(last=False)
            self._pending[pending.state] = pending
        url = _with_query(
            endpoint,
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": self.config.redirect_uri,
                "scope": " ".join(self.config.scopes),
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": challenge(pending.verifier),
                "code_challenge_method": "S256",
            },
        )
        return pending, url

    def _forget_expired(self) -> None:
        limit = self._clock() - PENDING_SECONDS
        while self._pending:
            first = next(iter(self._pending.values()))
            if first.started >= limit:
                break
            self._pending.popitem(last=False)

    # --- 2. back from the provider -------------------------------------------------------------

    def take(self, state: str, cookie: str) -> Pending:
        """The pending login ``state`` names, used up; ``LoginRefused`` unless it exists, has
        not expired and is the one this browser started (``cookie``)."""
        if not state or not cookie or not hmac.compare_digest(state.encode(), cookie.encode()):
            raise LoginRefused("state does not match the browser's flow cookie", _EXPIRED, 400)
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None:
            raise LoginRefused("state unknown, used before or forgotten", _EXPIRED, 400)
        if self._clock() - pending.started > PENDING_SECONDS:
            raise LoginRefused("state expired", _EXPIRED, 400)
        return pending

    # --- 3. the code for an ID token, and who it names -----------------------------------------

    def finish(self, code: str, pending: Pending) -> Identity:
        """Exchange ``code`` and check the ID token (blocking); ``LoginRefused`` on anything
        wrong (``status`` 503 when the provider cannot be reached)."""
        try:
            answer = self.provider.exchange(code, pending.verifier)
            token = answer["id_token"]
            key = self.provider.key_for(token)
        except ProviderRefused as exc:
            raise LoginRefused(f"provider refused: {exc}", _UNCONFIRMED, 401) from exc
        except ProviderError as exc:
            raise unavailable(exc) from exc
        except jwt.PyJWTError as exc:
            raise LoginRefused(f"id token: {type(exc).__name__}: {exc}", _UNCONFIRMED, 401) from exc
        claims = self.verify(token, key, pending.nonce)
        return self.identity(claims)

    def verify(self, token: str, key: Any, nonce: str) -> dict[str, Any]:
        """The claims of a valid ID token for ``nonce`` (OpenID Connect Core 3.1.3.7)."""
        config = self.config
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=config.client_id,
                issuer=config.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "nonce"]},
            )
        except jwt.PyJWTError as exc:
            raise LoginRefused(f"id token: {type(exc).__name__}: {exc}", _UNCONFIRMED, 401) from exc
        given = claims.get("nonce")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
            raise LoginRefused("id token: the nonce is not this login's", _UNCONFIRMED, 401)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != config.client_id:
            raise LoginRefused("id token: azp is not our client id", _UNCONFIRMED, 401)
        return claims

    def identity(self, claims: Mapping[str, Any]) -> Identity:
        """The console user the claims name; refused without a user name or without a role."""
        config = self.config
        name = _text(claim(claims, config.username_claim), 200)
        if name is None:
            raise LoginRefused(
                f"id token: no usable {config.username_claim!r} claim", _UNCONFIRMED, 401
            )
        # Lower case, as every user name of the console (``gateway users`` finds it so).
        username = USERNAME_PREFIX + name.lower()
        roles = roles_of(claims, config)
        if not roles:
            raise LoginRefused(
                f"no console role: no value of {config.roles_claim!r} is in web.oidc.roles",
                "Brukeren din har ingen rolle i konsollet. Be den som styrer tilgangene om en "
                "rolle (saksbehandler, drift eller revisor).",
                403,
                username,
            )
        return Identity(
            username=username,
            display_name=_text(claim(claims, config.name_claim), 200) or name,
            roles=roles,
            subject=str(claims["sub"]),
        )
