"""The ``[web]`` and ``[web.api]`` sections of the config file: the console and the status API.

Every key is optional; relative paths are resolved against the config file's directory. Read
with ``gateway.settings.Table`` like every other table (``WebConfig.from_table``, collected with
the adapters' settings by ``gateway.adapters.Adapters.of``): an error names the file and the key.

``[web]``
    ``host`` (``127.0.0.1``), ``port`` (``8480``): where ``gateway web`` listens. Keep it on
    localhost behind a TLS reverse proxy (docs/web.md), or give ``tls_cert_file`` and
    ``tls_key_file`` to serve TLS itself.
    ``session_idle_minutes`` (30), ``session_max_hours`` (10): a console session ends after this
    long without a request, and this long after login whatever the activity.
    ``cookie_secure`` (true): the session cookie is sent over HTTPS only. Set false only for a
    console on plain http://127.0.0.1 (development, tests).
    ``login_max_failures`` (5), ``login_window_minutes`` (15): throttling of failed logins per
    user name (and four times as many per client address).
    ``forwarded_allow_ips`` ([]): addresses of reverse proxies whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed (the client address counts for throttling and audit).
    ``root_path`` (""): the path prefix when the proxy serves the console under one.
    ``in_daemon`` (false): ``gateway run`` serves the console and the API too (one process;
    ``gateway web`` as its own service is the production way, docs/web.md).

``[web.oidc]``: console login with OpenID Connect beside local accounts
(``gateway.web.oidc.config`` documents every key).

``[web.api]``: who may ask the claim status API (``/api/v1``), and how they prove it
    ``jwt_issuer``: the token issuer (``iss``), e.g. HelseID's. With it, a request may carry
    ``Authorization: Bearer <JWT>``, verified against the issuer's keys: ``jwks_url`` (fetched
    and cached) or ``jwks_file`` (a JWKS document on disk).
    ``jwt_audience``: required ``aud`` (default: none checked is refused; give it).
    ``jwt_algorithms`` (``["RS256", "PS256", "ES256"]``).
    ``sender_claim`` (``"client_id"``): the claim that names the sender. With a
    ``[web.api.senders]`` table (claim value = sender HER id) the value is looked up there;
    without it the value must itself be the sender's HER id.
    ``mtls`` (false): accept mutual TLS instead: the client certificate must be one a partner's
    CPA holds (``partners.directory``); the sender is that partner's HER id.
    ``client_ca_file``: CA certificates to verify client certificates with when ``gateway web``
    serves TLS itself (``tls_cert_file``).
    ``client_cert_header`` and ``trusted_proxies``: when a reverse proxy terminates mutual TLS,
    the header it puts the verified client certificate in (PEM, URL-encoded as nginx's
    ``$ssl_client_escaped_cert``), believed only from these proxy addresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.settings import Table
from gateway.web.oidc.config import OidcConfig

DEFAULT_PORT = 8480
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256")

_WEB_KEYS = (
    "host",
    "port",
    "session_idle_minutes",
    "session_max_hours",
    "cookie_secure",
    "login_max_failures",
    "login_window_minutes",
    "forwarded_allow_ips",
    "root_path",
    "tls_cert_file",
    "tls_key_file",
    "in_daemon",
    "api",
    "oidc",
)
_API_KEYS = (
    "jwt_issuer",
    "jwt_audience",
    "jwt_algorithms",
    "jwks_url",
    "jwks_file",
    "sender_claim",
    "senders",
    "mtls",
    "client_ca_file",
    "client_cert_header",
    "trusted_proxies",
)


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """How senders authenticate to the claim status API."""

    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    jwks_url: str | None = None
    jwks_file: Path | None = None
    sender_claim: str = "client_id"
    senders: dict[str, str] = field(default_factory=dict)
    mtls: bool = False
    client_ca_file: Path | None = None
    client_cert_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()

    @property
    def jwt_enabled(self) -> bool:
        return self.jwt_issuer is not None


@dataclass(frozen=True, slots=True)
class WebConfig:
    """Validated ``[web]`` settings."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    session_idle_minutes: float = 30.0
    session_max_hours: float = 10.0
    cookie_secure: bool = True
    login_max_failures: int = 5
    login_window_minutes: float = 15.0
    forwarded_allow_ips: tuple[str, ...] = ()
    root_path: str = ""
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    in_daemon: bool = False
    api: ApiConfig = field(default_factory=ApiConfig)
    oidc: OidcConfig | None = None

    @classmethod
    def from_mapping(cls, data: dict[str, Any], base: Path) -> WebConfig:
        """Read a ``[web]`` table; relative paths are resolved against ``base``."""
        return cls.from_table(Table(data, base=base, where="web"))

    @classmethod
    def from_table(cls, t: Table) -> WebConfig:
        """Read the ``[web]`` table (empty: the defaults)."""
        t.only(_WEB_KEYS)
        cert, key = t.opt_path("tls_cert_file"), t.opt_path("tls_key_file")
        if (cert is None) != (key is None):
            raise t.error(
                f"give both {t.key('tls_cert_file')} and {t.key('tls_key_file')}, or neither"
            )
        api = _api(t.table("api"))
        if api.client_ca_file is not None and cert is None:
            raise t.error(f"{t.key('api.client_ca_file')} needs {t.key('tls_cert_file')}")
        root = "" if t.raw("root_path") == "" else t.opt_string("root_path") or ""
        if root and (not root.startswith("/") or root.endswith("/")):
            raise t.fail("root_path", "a path that starts with '/' and does not end with one")
        return cls(
            host=t.string("host", "127.0.0.1"),
            port=t.integer("port", DEFAULT_PORT, low=1, high=65535),
            session_idle_minutes=t.number("session_idle_minutes", 30.0, positive=True),
            session_max_hours=t.number("session_max_hours", 10.0, positive=True),
            cookie_secure=t.boolean("cookie_secure", True),
            login_max_failures=t.integer("login_max_failures", 5, low=1, high=1000),
            login_window_minutes=t.number("login_window_minutes", 15.0, positive=True),
            forwarded_allow_ips=_texts(t, "forwarded_allow_ips"),
            root_path=root,
            tls_cert_file=cert,
            tls_key_file=key,
            in_daemon=t.boolean("in_daemon", False),
            api=api,
            oidc=OidcConfig.from_table(t.table("oidc")),
        )


def _api(t: Table) -> ApiConfig:
    t.only(_API_KEYS)
    issuer = t.opt_string("jwt_issuer")
    jwks_url, jwks_file = t.opt_string("jwks_url"), t.opt_path("jwks_file")
    if issuer is not None and (jwks_url is None) == (jwks_file is None):
        raise t.error(f"{t.key('jwt_issuer')} needs one of jwks_url and jwks_file")
    if jwks_url is not None and not jwks_url.startswith("https://"):
        # The keys decide who is who: fetch them over TLS only.
        raise t.fail("jwks_url", "an https:// URL")
    audience = t.opt_string("jwt_audience")
    if issuer is not None and audience is None:
        raise t.error(f"{t.key('jwt_issuer')} needs jwt_audience (the API's audience)")
    senders = t.table("senders")
    header = t.opt_string("client_cert_header")
    proxies = _texts(t, "trusted_proxies")
    if header is not None and not proxies:
        raise t.error(f"{t.key('client_cert_header')} needs trusted_proxies")
    return ApiConfig(
        jwt_issuer=issuer,
        jwt_audience=audience,
        jwt_algorithms=_texts(t, "jwt_algorithms") or DEFAULT_ALGORITHMS,
        jwks_url=jwks_url,
        jwks_file=jwks_file,
        sender_claim=t.string("sender_claim", "client_id"),
        # Claim value = the sender's HER id.
        senders={str(name): senders.digits(str(name)) for name in senders.data},
        mtls=t.boolean("mtls", False),
        client_ca_file=t.opt_path("client_ca_file"),
        client_cert_header=header,
        trusted_proxies=proxies,
    )


def _texts(t: Table, name: str) -> tuple[str, ...]:
    """A list of non-empty strings."""
    values = t.strings(name)
    if not all(v.strip() for v in values):
        raise t.fail(name, "a list of non-empty strings")
    return tuple(v.strip() for v in values)
