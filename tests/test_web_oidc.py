"""Console login with OpenID Connect, against a real console and a small provider of our own on
localhost (``tests/support/oidc.py``): the code flow with PKCE, the ID token's checks (nonce,
audience, expiry, signature, issuer), roles from a claim, and everything a password login has
too: sessions, audit, throttling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.errors import ConfigurationError
from gateway.settings import Table
from gateway.users.accounts import AccountError
from gateway.users.roles import Role
from gateway.web.oidc.config import OidcConfig
from gateway.web.oidc.flow import LoginRefused, OidcLogin, challenge, roles_of
from tests.support.net import free_port
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, OidcProvider, oidc_section, signing_key
from tests.support.web import Console, csrf_of

pytestmark = pytest.mark.integration

DRIFT = {"preferred_username": "siri", "name": "Siri Drift", "groups": ["kuhr-drift", "andre"]}


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with OidcProvider(user=dict(DRIFT)) as running:
        yield running


@pytest.fixture
def sso(
    start_console: Callable[..., AbstractContextManager[Console]],
    provider: OidcProvider,
    tmp_path: Path,
) -> Iterator[Console]:
    """A console whose [web.oidc] names ``provider`` (a confidential client)."""
    secret = tmp_path / "oidc-secret"
    secret.write_text(CLIENT_SECRET + "\n", encoding="utf-8")
    port = free_port()
    section = oidc_section(provider, f"http://127.0.0.1:{port}", str(secret))
    with start_console(api_extra=section, port=port) as running:
        yield running


def client(web: Console) -> httpx.Client:
    return httpx.Client(base_url=web.base, follow_redirects=False, timeout=30)


def to_provider(http: httpx.Client, neste: str = "/") -> httpx.Response:
    """Start a login: the console's redirect to the provider."""
    started = http.get("/oidc/logg-inn", params={"neste": neste})
    assert started.status_code == 303, started.text
    return started


def at_provider(started: httpx.Response) -> str:
    """The provider logs the user in; the callback URL it sends the browser back to."""
    answer = httpx.get(started.headers["location"], follow_redirects=False, timeout=30)
    assert answer.status_code == 302
    return answer.headers["location"]


def sso_login(http: httpx.Client, neste: str = "/") -> httpx.Response:
    return http.get(at_provider(to_provider(http, neste)))


def actions(web: Console, actor: str | None = None) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.action, e.detail) for e in web.data.accounts.audit_entries(actor=actor)]


# --- the good path -------------------------------------------------------------------------------


def test_a_good_login_runs_the_code_flow_with_pkce_and_starts_a_session(
    sso: Console, provider: OidcProvider
) -> None:
    with client(sso) as http:
        page = http.get("/logg-inn", params={"neste": "/drift/dodbrev"})
        assert "Logg inn med Testleverandøren" in page.text
        started = to_provider(http, "/drift/dodbrev")
        url = urlsplit(started.headers["location"])
        assert f"{url.scheme}://{url.netloc}" == provider.issuer and url.path == "/authorize"
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        assert query["redirect_uri"] == sso.base + "/oidc/tilbake"
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert query["scope"].split() == ["openid", "profile"]
        assert len(query["state"]) >= 40 and len(query["nonce"]) >= 40
        flow = started.headers["set-cookie"]
        assert "gateway_oidc=" + query["state"] in flow
        assert "HttpOnly" in flow and "SameSite=lax" in flow and "Path=/oidc" in flow

        back = http.get(at_provider(started))
        assert back.status_code == 200, back.text
        assert 'http-equiv="refresh" content="0; url=/drift/dodbrev"' in back.text
        session = back.headers.get_list("set-cookie")
        assert any(c.startswith("gateway_session=") and "SameSite=strict" in c for c in session)
        assert http.get("/drift/dodbrev").status_code == 200
        assert http.get("/arbeidsliste").status_code == 403  # drift only
        assert "Siri Drift" in http.get("/drift").text
    assert provider.token_errors == []
    token_form = dict(provider.requests)["/token"]
    assert (
        token_form["code_verifier"]
        and challenge(token_form["code_verifier"]) == (query["code_challenge"])
    )
    user = sso.data.store.users.user_by_name("oidc:siri")
    assert user is not None and user.roles == ("drift",) and user.display_name == "Siri Drift"
    assert ("oidc:siri", "login", "oidc") in actions(sso, "oidc:siri")
    assert ("oidc", "user_add", "roller: drift") in actions(sso, "oidc")


def test_roles_follow_the_provider_at_each_login_and_the_account_has_no_password(
    sso: Console, provider: OidcProvider
) -> None:
    with client(sso) as http:
        assert sso_login(http).status_code == 200
    provider.user["groups"] = ["kuhr-revisjon", "kuhr-saksbehandlere"]
    with client(sso) as http:
        assert sso_login(http).status_code == 200
        assert http.get("/revisjon").status_code == 200
    user = sso.data.store.users.user_by_name("oidc:siri")
    assert user is not None and user.roles == ("drift", "revisor", "saksbehandler")
    assert ("oidc", "user_roles", "drift -> drift,revisor,saksbehandler") in actions(sso, "oidc")
    # No password matches an OIDC account, and none can be set for it.
    with client(sso) as http:
        page = http.get("/logg-inn")
        refused = http.post(
            "/logg-inn",
            data={"csrf": csrf_of(page.text), "brukernavn": "oidc:siri", "passord": "x" * 20},
        )
        assert refused.status_code == 401
    with pytest.raises(AccountError):
        sso.data.accounts.set_password("oidc:siri", "et-helt-nytt-passord", by="test")


def test_a_user_disabled_in_the_console_stays_out(sso: Console) -> None:
    with client(sso) as http:
        assert sso_login(http).status_code == 200
        sso.data.accounts.set_disabled("oidc:siri", True, by="test")
        assert http.get("/drift").status_code == 303  # the session ended
        refused = sso_login(http)
        assert refused.status_code == 403 and "stengt" in refused.text
        assert "gateway_session=" not in refused.headers.get("set-cookie", "")


# --- refused -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "lifetime", "why"),
    [
        ({"nonce": "en-annen-nonce"}, 300, "nonce"),
        ({"nonce": None}, 300, "nonce"),
        ({"aud": "en-annen-klient"}, 300, "InvalidAudienceError"),
        ({"aud": [CLIENT_ID, "en-annen-klient"]}, 300, "azp"),
        ({"iss": "http://127.0.0.1:1"}, 300, "InvalidIssuerError"),
        ({}, -120, "ExpiredSignatureError"),
    ],
    ids=[
        "wrong-nonce",
        "no-nonce",
        "wrong-audience",
        "two-audiences-no-azp",
        "wrong-issuer",
        "expired",
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(
    sso: Console, provider: OidcProvider, tamper: dict[str, Any], lifetime: int, why: str
) -> None:
    from datetime import timedelta

    provider.tamper = tamper
    provider.lifetime = timedelta(seconds=lifetime)
    with client(sso) as http:
        refused = sso_login(http)
        assert refused.status_code == 401, refused.text
        assert "kunne ikke bekreftes" in refused.text
        assert "gateway_session=" not in refused.headers.get("set-cookie", "")
        assert http.get("/drift").status_code == 303
    assert sso.data.store.users.user_by_name("oidc:siri") is None
    (entry,) = [a for a in actions(sso) if a[1] == "login_failed"]
    assert entry[0] == "-" and entry[2] is not None and why in entry[2]


def test_a_token_signed_by_another_key_is_refused(sso: Console, provider: OidcProvider) -> None:
    provider.key = signing_key("impostor")
    with client(sso) as http:
        assert sso_login(http).status_code == 401
    assert any("InvalidSignatureError" in (a[2] or "") for a in actions(sso))


def test_a_user_whose_groups_map_to_no_role_is_refused(
    sso: Console, provider: OidcProvider
) -> None:
    provider.user["groups"] = ["andre", "kuhr-ukjent"]
    with client(sso) as http:
        refused = sso_login(http)
        assert refused.status_code == 403
        assert "ingen rolle i konsollet" in refused.text
        assert http.get("/drift").status_code == 303
    assert sso.data.store.users.user_by_name("oidc:siri") is None
    assert any(
        a[:2] == ("oidc:siri", "login_failed") and "no console role" in (a[2] or "")
        for a in actions(sso)
    )
    provider.user.pop("groups")
    with client(sso) as http:
        assert sso_login(http).status_code == 403


def test_a_tampered_state_is_refused_before_the_provider_is_asked(
    sso: Console, provider: OidcProvider
) -> None:
    with client(sso) as http:
        callback = at_provider(to_provider(http))
        parts = urlsplit(callback)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        tampered = http.get("/oidc/tilbake", params={**query, "state": query["state"][:-2] + "xx"})
        assert tampered.status_code == 400 and "utløpt eller ugyldig" in tampered.text
        assert "/token" not in provider.paths()
        # A callback without the browser's flow cookie (login CSRF: someone else's code).
        with client(sso) as stranger:
            assert stranger.get(callback).status_code == 400
        assert "/token" not in provider.paths()


def test_a_callback_counts_once(sso: Console, provider: OidcProvider) -> None:
    with client(sso) as http:
        callback = at_provider(to_provider(http))
        flow = http.cookies.get("gateway_oidc")
        assert flow and http.get(callback).status_code == 200
    replayed = httpx.get(callback, headers={"cookie": f"gateway_oidc={flow}"}, timeout=30)
    assert replayed.status_code == 400
    assert provider.paths().count("/token") == 1


def test_the_provider_refusing_the_code_or_the_user_cancelling_is_refused(
    sso: Console, provider: OidcProvider
) -> None:
    with client(sso) as http:
        callback = at_provider(to_provider(http))
        provider.grants.clear()  # the provider no longer knows the code
        refused = http.get(callback)
        assert refused.status_code == 401 and "kunne ikke bekreftes" in refused.text
        assert provider.token_errors == ["invalid_grant"]
    assert any("(invalid_grant)" in (a[2] or "") for a in actions(sso) if a[1] == "login_failed")
    with client(sso) as http:
        started = to_provider(http)
        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        cancelled = http.get("/oidc/tilbake", params={"error": "access_denied", "state": state})
        assert cancelled.status_code == 401 and "avbrutt" in cancelled.text


def test_a_wrong_client_secret_is_refused(sso: Console, provider: OidcProvider) -> None:
    provider.client_secret = "en annen hemmelighet"
    with client(sso) as http:
        assert sso_login(http).status_code == 401
    assert provider.token_errors == ["invalid_client"]


def test_a_provider_gone_during_the_login_is_unavailable_and_not_counted(
    sso: Console, provider: OidcProvider
) -> None:
    with client(sso) as http:
        callback = at_provider(to_provider(http))
        provider.__exit__(None, None, None)
        refused = http.get(callback)
        assert refused.status_code == 503 and "svarer ikke" in refused.text
    assert not any(a[1] == "login_failed" for a in actions(sso))


def test_failed_callbacks_are_throttled_per_address(sso: Console, provider: OidcProvider) -> None:
    provider.tamper = {"aud": "en-annen-klient"}
    with client(sso) as http:
        for _ in range(20):  # 4 x login_max_failures (5) from one address
            assert sso_login(http).status_code == 401
        provider.tamper = {}
        throttled = http.get("/oidc/logg-inn")
        assert throttled.status_code == 429
    assert any(a[1] == "login_throttled" for a in actions(sso))


def test_a_provider_that_cannot_be_reached_leaves_password_login_working(
    start_console: Callable[..., AbstractContextManager[Console]],
) -> None:
    port = free_port()
    with OidcProvider() as gone:
        section = oidc_section(gone, f"http://127.0.0.1:{port}", None)
    with start_console(api_extra=section, port=port) as web, client(web) as http:
        refused = http.get("/oidc/logg-inn")
        assert refused.status_code == 503 and "bruk passord" in refused.text
        assert csrf_of(refused.text)  # the password form is there


# --- the pieces ----------------------------------------------------------------------------------


def config(**changes: Any) -> OidcConfig:
    data: dict[str, Any] = {
        "issuer": "https://login.example.no/realms/helfo",
        "client_id": "kuhr-konsoll",
        "redirect_uri": "https://kuhr.example.no/oidc/tilbake",
        "roles": {"g-sb": "saksbehandler", "g-drift": ["drift", "revisor"]},
        **changes,
    }
    found = OidcConfig.from_table(Table(data, base=Path("/"), where="web.oidc", source="t.toml"))
    assert found is not None
    return found


def test_the_user_name_is_the_claim_in_lower_case_and_a_user_without_one_is_refused() -> None:
    login = OidcLogin(config())
    found = login.identity(
        {"sub": "s-1", "preferred_username": "Kari.Nordmann@Helfo.no", "roles": ["g-sb"]}
    )
    assert found.username == "oidc:kari.nordmann@helfo.no"
    assert found.display_name == "Kari.Nordmann@Helfo.no" and found.subject == "s-1"
    for bad in (None, "", "a\nb", 42, "x" * 201):
        with pytest.raises(LoginRefused, match="preferred_username"):
            login.identity({"sub": "s-1", "preferred_username": bad, "roles": ["g-sb"]})


def test_roles_come_from_a_nested_claim_a_list_or_one_value() -> None:
    nested = config(roles_claim="realm_access.roles")
    assert roles_of({"realm_access": {"roles": ["g-drift", "x"]}}, nested) == (
        Role.DRIFT,
        Role.REVISOR,
    )
    assert roles_of({"roles": "g-sb"}, config()) == (Role.SAKSBEHANDLER,)
    assert roles_of({"roles": {"g-sb": True}}, config()) == ()
    assert roles_of({}, config()) == ()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issuer": "http://login.example.no"}, "web.oidc.issuer must be an https:// URL"),
        ({"redirect_uri": "https://kuhr.example.no/cb"}, "web.oidc.redirect_uri must be a URL"),
        ({"roles": {}}, "web.oidc.roles must map at least one claim value"),
        ({"roles": {"g": "sjef"}}, "web.oidc.roles.g: unknown role 'sjef'"),
        ({"algorithms": ["HS256"]}, "web.oidc.algorithms must be a list of"),
        ({"scopes": ["profile"]}, "web.oidc.scopes must be a list that includes 'openid'"),
        ({"client_secret": "x"}, "unknown key(s) web.oidc.client_secret"),
        ({"client_secret_file": "a", "client_secret_env": "B"}, "not both"),
    ],
)
def test_a_bad_oidc_table_names_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"t\.toml: ") as caught:
        config(**changes)
    assert message in str(caught.value)


def test_http_is_accepted_for_a_loopback_issuer_only_and_the_table_is_optional() -> None:
    assert config(issuer="http://127.0.0.1:8080/x").issuer == "http://127.0.0.1:8080/x"
    assert OidcConfig.from_table(Table({}, base=Path("/"), where="web.oidc")) is None


def test_pending_logins_expire_and_are_used_once() -> None:
    now = [1000.0]

    class Endpoints:
        authorization = "https://login.example.no/auth?kc_idp_hint=x"

    class FakeProvider:
        def endpoints(self) -> Endpoints:
            return Endpoints()

    login = OidcLogin(config(), FakeProvider(), clock=lambda: now[0])  # type: ignore[arg-type]
    pending, url = login.begin("/drift")
    assert url.startswith("https://login.example.no/auth?kc_idp_hint=x&response_type=code")
    assert login.take(pending.state, pending.state).next_path == "/drift"
    with pytest.raises(LoginRefused, match="used before"):
        login.take(pending.state, pending.state)
    late, _ = login.begin("/")
    now[0] += 601
    with pytest.raises(LoginRefused, match=r"unknown|expired"):
        login.take(late.state, late.state)
