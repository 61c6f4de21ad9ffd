"""The ``[web.oidc]`` table: console login with OpenID Connect, as an option beside local
accounts (docs/web.md has every key).

    [web.oidc]
    issuer = "https://login.example.no/realms/helfo"   # discovery: <issuer>/.well-known/...
    client_id = "kuhr-konsoll"
    client_secret_file = "/etc/gateway/oidc-secret"    # or client_secret_env; none: public client
    redirect_uri = "https://kuhr-konsoll.example.no/oidc/tilbake"
    roles_claim = "groups"                              # dotted for nested: realm_access.roles
    [web.oidc.roles]                                    # claim value = console role(s)
    "kuhr-saksbehandlere" = "saksbehandler"
    "kuhr-drift" = ["drift"]

The issuer, and every endpoint its discovery document names, must be https; plain http is
accepted only on the loopback interface (development, tests).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway.settings import Table, read_secret
from gateway.users.roles import Role, parse_roles

#: Asymmetric signatures only: an HMAC (HS*) key would be the client secret, and "none" is none.
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256")
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KEYS = (
    "issuer",
    "client_id",
    "client_secret_file",
    "client_secret_env",
    "redirect_uri",
    "scopes",
    "algorithms",
    "username_claim",
    "name_claim",
    "roles_claim",
    "roles",
    "label",
    "timeout",
)


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def secure_url(url: str) -> bool:
    """An https URL, or http to the loopback interface."""
    parts = urlsplit(url)
    if not parts.netloc or parts.username or parts.password:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname))


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """Validated ``[web.oidc]`` settings."""

    issuer: str
    client_id: str
    redirect_uri: str
    #: Claim value (a group, an app role) to console roles.
    roles: dict[str, tuple[Role, ...]]
    client_secret_file: Path | None = None
    client_secret_env: str | None = None
    scopes: tuple[str, ...] = ("openid", "profile")
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    username_claim: str = "preferred_username"
    name_claim: str = "name"
    roles_claim: str = "roles"
    #: The button's text on the login page: "Logg inn med <label>".
    label: str = "felles innlogging"
    timeout: float = 10.0

    @property
    def confidential(self) -> bool:
        """Whether the client authenticates to the token endpoint with a secret."""
        return self.client_secret_file is not None or self.client_secret_env is not None

    def client_secret(self) -> str:
        """Read each time it is needed (rotatable); ``ConfigurationError`` if unreadable."""
        return read_secret(
            self.client_secret_file, self.client_secret_env, what="web.oidc client secret"
        )

    @classmethod
    def from_table(cls, t: Table) -> OidcConfig | None:
        """The ``[web.oidc]`` table, or None when it is absent (local accounts only)."""
        if not t.data:
            return None
        t.only(_KEYS)
        issuer = t.string("issuer").rstrip("/")
        if not secure_url(issuer):
            raise t.fail("issuer", "an https:// URL (http:// only on the loopback interface)")
        redirect = t.string("redirect_uri")
        if not secure_url(redirect) or urlsplit(redirect).fragment:
            raise t.fail(
                "redirect_uri", "the console's https:// callback URL, ending in /oidc/tilbake"
            )
        if not urlsplit(redirect).path.endswith("/oidc/tilbake"):
            raise t.fail("redirect_uri", "a URL ending in /oidc/tilbake (the console's callback)")
        secret_file, secret_env = (
            t.opt_path("client_secret_file"),
            t.opt_string("client_secret_env"),
        )
        if secret_file is not None and secret_env is not None:
            raise t.error(
                f"give {t.key('client_secret_file')} or {t.key('client_secret_env')}, not both"
            )
        scopes = tuple(t.strings("scopes", ["openid", "profile"]))
        if "openid" not in scopes:
            raise t.fail("scopes", "a list that includes 'openid'")
        algorithms = tuple(t.strings("algorithms", list(DEFAULT_ALGORITHMS)))
        if not algorithms or not set(algorithms) <= ALLOWED_ALGORITHMS:
            raise t.fail("algorithms", "a list of " + ", ".join(sorted(ALLOWED_ALGORITHMS)))
        return cls(
            issuer=issuer,
            client_id=t.string("client_id"),
            redirect_uri=redirect,
            roles=_roles(t),
            client_secret_file=secret_file,
            client_secret_env=secret_env,
            scopes=scopes,
            algorithms=algorithms,
            username_claim=t.string("username_claim", "preferred_username"),
            name_claim=t.string("name_claim", "name"),
            roles_claim=t.string("roles_claim", "roles"),
            label=t.string("label", "felles innlogging"),
            timeout=t.number("timeout", 10.0, positive=True),
        )


def _roles(t: Table) -> dict[str, tuple[Role, ...]]:
    """``[web.oidc.roles]``: each claim value to one role or a list of roles; at least one."""
    table = t.table("roles")
    if not table.data:
        raise t.error(
            f"{t.key('roles')} must map at least one claim value to a console role "
            "(saksbehandler, drift, revisor): without it nobody could log in"
        )
    mapped: dict[str, tuple[Role, ...]] = {}
    for name, value in table.data.items():
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise table.fail(str(name), "a role name or a list of role names")
        try:
            mapped[str(name)] = parse_roles(names)
        except ValueError as exc:
            raise table.error(f"{table.key(str(name))}: {exc}") from None
        if not mapped[str(name)]:
            raise table.fail(str(name), "a role name or a list of role names")
    return mapped
