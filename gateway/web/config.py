"""The ``[web]`` and ``[web.api]`` sections of the config file: the console and the status API.

Every key is optional; relative paths are resolved against the config file's directory.
``WebConfig.from_toml`` raises ``ConfigurationError`` naming the bad key.

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

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigurationError

DEFAULT_PORT = 8480
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256")

_WEB_KEYS = frozenset(
    {
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
        "api",
    }
)
_API_KEYS = frozenset(
    {
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
    }
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
    api: ApiConfig = field(default_factory=ApiConfig)

    @classmethod
    def from_toml(cls, path: Path) -> WebConfig:
        """The ``[web]`` table of the config file ``path`` (defaults when there is none)."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: not valid TOML: {exc}") from exc
        try:
            return cls.from_mapping(data.get("web", {}), path.resolve().parent)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path}: {exc}") from exc

    @classmethod
    def from_mapping(cls, data: object, base: Path) -> WebConfig:
        table = _table(data, "web", _WEB_KEYS)
        r = _Reader(table, "web", base)
        cert, key = r.path("tls_cert_file"), r.path("tls_key_file")
        if (cert is None) != (key is None):
            raise ConfigurationError("give both web.tls_cert_file and web.tls_key_file, or neither")
        api = _api(table.get("api", {}), base)
        if api.client_ca_file is not None and cert is None:
            raise ConfigurationError("web.api.client_ca_file needs web.tls_cert_file")
        root = r.text("root_path", "")
        if root and (not root.startswith("/") or root.endswith("/")):
            raise ConfigurationError("web.root_path must start with '/' and not end with one")
        return cls(
            host=r.text("host", "127.0.0.1"),
            port=r.integer("port", DEFAULT_PORT, low=1, high=65535),
            session_idle_minutes=r.number("session_idle_minutes", 30.0),
            session_max_hours=r.number("session_max_hours", 10.0),
            cookie_secure=r.boolean("cookie_secure", True),
            login_max_failures=r.integer("login_max_failures", 5, low=1, high=1000),
            login_window_minutes=r.number("login_window_minutes", 15.0),
            forwarded_allow_ips=r.texts("forwarded_allow_ips"),
            root_path=root,
            tls_cert_file=cert,
            tls_key_file=key,
            api=api,
        )


def _api(data: object, base: Path) -> ApiConfig:
    table = _table(data, "web.api", _API_KEYS)
    r = _Reader(table, "web.api", base)
    issuer = r.optional_text("jwt_issuer")
    jwks_url, jwks_file = r.optional_text("jwks_url"), r.path("jwks_file")
    if issuer is not None and (jwks_url is None) == (jwks_file is None):
        raise ConfigurationError("web.api.jwt_issuer needs one of jwks_url and jwks_file")
    if jwks_url is not None and not jwks_url.startswith("https://"):
        # The keys decide who is who: fetch them over TLS only.
        raise ConfigurationError("web.api.jwks_url must be an https:// URL")
    audience = r.optional_text("jwt_audience")
    if issuer is not None and audience is None:
        raise ConfigurationError("web.api.jwt_issuer needs jwt_audience (the API's audience)")
    senders_raw = table.get("senders", {})
    if not isinstance(senders_raw, dict) or not all(
        isinstance(v, str) and v.isdigit() for v in senders_raw.values()
    ):
        raise ConfigurationError("web.api.senders must map claim values to HER ids (digits)")
    header = r.optional_text("client_cert_header")
    proxies = r.texts("trusted_proxies")
    if header is not None and not proxies:
        raise ConfigurationError("web.api.client_cert_header needs trusted_proxies")
    return ApiConfig(
        jwt_issuer=issuer,
        jwt_audience=audience,
        jwt_algorithms=r.texts("jwt_algorithms") or DEFAULT_ALGORITHMS,
        jwks_url=jwks_url,
        jwks_file=jwks_file,
        sender_claim=r.text("sender_claim", "client_id"),
        senders={str(k): str(v) for k, v in senders_raw.items()},
        mtls=r.boolean("mtls", False),
        client_ca_file=r.path("client_ca_file"),
        client_cert_header=header,
        trusted_proxies=proxies,
    )


def _table(data: object, name: str, keys: frozenset[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigurationError(f"[{name}] must be a table")
    unknown = sorted(set(data) - keys)
    if unknown:
        raise ConfigurationError(f"{name}.{unknown[0]} is not a known key")
    return data


class _Reader:
    def __init__(self, data: dict[str, Any], prefix: str, base: Path) -> None:
        self.data, self.prefix, self.base = data, prefix, base

    def _fail(self, key: str, expected: str) -> ConfigurationError:
        return ConfigurationError(
            f"{self.prefix}.{key} must be {expected}, got {self.data[key]!r}"
        )

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value.strip()

    def optional_text(self, key: str) -> str | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "a non-empty string")
        return value.strip()

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "a list of strings")
        return tuple(value)

    def path(self, key: str) -> Path | None:
        value = self.optional_text(key)
        return None if value is None else (self.base / value).resolve()

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._fail(key, f"a whole number from {low} to {high}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._fail(key, "a positive number")
        return float(value)
