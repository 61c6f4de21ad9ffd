"""The console's parts without a server: the [web] config, roles, passwords, accounts and
throttling on a real store, the users command, replies made readable, and the shell's quiet
exit when its reader goes away."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.store import Store
from gateway.users import cli as users_cli
from gateway.users.accounts import AccountError, Accounts, LoginFailed, LoginThrottled, Policy
from gateway.users.passwords import PasswordRejected, use_low_cost_for_tests
from gateway.users.roles import Permission, Role, allowed, parse_roles
from gateway.web.config import WebConfig
from gateway.web.replies import readable_reply
from tests.conftest import database_table

use_low_cost_for_tests()


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"colour": "blue"}, r"unknown key\(s\) web.colour "),
        ({"api": {"issuer": "https://i"}}, r"unknown key\(s\) web.api.issuer "),
        ({"port": 0}, "web.port must be an integer from 1 to 65535, got 0"),
        ({"cookie_secure": "yes"}, "web.cookie_secure must be true or false"),
        ({"tls_cert_file": "c.pem"}, "give both web.tls_cert_file"),
        ({"api": {"jwt_issuer": "https://i", "jwt_audience": "a"}}, "needs one of jwks_url"),
        ({"api": {"jwt_issuer": "https://i", "jwks_file": "k.json"}}, "needs jwt_audience"),
        (
            {"api": {"jwt_issuer": "https://i", "jwt_audience": "a", "jwks_url": "http://i/k"}},
            "must be an https:// URL",
        ),
        ({"api": {"client_cert_header": "X-Cert"}}, "needs trusted_proxies"),
        (
            {"api": {"senders": {"client": "not digits"}}},
            "web.api.senders.client must be a string of digits",
        ),
        ({"root_path": "console/"}, "web.root_path must be a path that starts with '/'"),
        ({"session_idle_minutes": 0}, "web.session_idle_minutes must be a positive number"),
    ],
)
def test_bad_web_config_names_the_key(table: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        WebConfig.from_mapping(table, Path("/etc/gateway"))


def test_web_config_defaults_and_paths(tmp_path: Path) -> None:
    assert WebConfig.from_mapping({}, tmp_path) == WebConfig()
    web = WebConfig.from_mapping(
        {"api": {"jwt_issuer": "https://i", "jwt_audience": "a", "jwks_file": "keys.json"}},
        tmp_path,
    )
    assert web.host == "127.0.0.1" and web.cookie_secure
    assert web.api.jwks_file == tmp_path / "keys.json"


def test_roles_grant_what_the_table_says() -> None:
    assert allowed(["saksbehandler"], Permission.CASEWORK_WRITE)
    assert not allowed(["revisor"], Permission.CASEWORK_WRITE)
    assert not allowed(["revisor"], Permission.OPERATIONS_WRITE)
    assert not allowed(["drift"], Permission.CASEWORK_READ)
    assert not allowed(["saksbehandler"], Permission.AUDIT_READ)
    assert not allowed(["admin"], Permission.CASEWORK_READ)
    assert parse_roles(["drift,revisor", "drift"]) == (Role.DRIFT, Role.REVISOR)
    with pytest.raises(ValueError, match="unknown role 'admin'"):
        parse_roles(["admin"])


@pytest.fixture
def accounts(store: Store) -> Accounts:
    policy = Policy(max_failures=3, max_client_failures=12, window=timedelta(minutes=10))
    return Accounts(store.users, policy)


def test_accounts_refuse_weak_or_odd_input(accounts: Accounts) -> None:
    with pytest.raises(PasswordRejected):
        accounts.add("kari", "short", [Role.DRIFT], by="t")
    with pytest.raises(PasswordRejected):
        accounts.add("kari", "kari-is-my-password", [Role.DRIFT], by="t")
    with pytest.raises(AccountError):
        accounts.add("Kari Nordmann", "a long enough secret", [Role.DRIFT], by="t")
    with pytest.raises(AccountError):
        accounts.add("kari", "a long enough secret", [], by="t")
    accounts.add("kari", "a long enough secret", [Role.DRIFT], by="t")
    with pytest.raises(AccountError, match="finnes allerede"):
        accounts.add("kari", "a long enough secret", [Role.DRIFT], by="t")


def test_password_is_stored_hashed_and_sessions_live_as_long_as_allowed(
    accounts: Accounts, store: Store
) -> None:
    accounts.add("kari", "a long enough secret", [Role.DRIFT], by="t")
    stored = store.engine.rows("SELECT password_hash FROM console_users")[0][0]
    assert str(stored).startswith("$argon2id$") and "a long enough secret" not in str(stored)
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    accounts.clock = lambda: now
    token, session = accounts.login("kari", "a long enough secret", "10.0.0.1")
    assert store.engine.rows("SELECT token_hash FROM console_sessions")[0][0] != token
    assert accounts.session(token) == session
    for step in range(1, 25):  # active all day: the absolute limit still ends it
        now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC) + timedelta(minutes=29 * step)
        accounts.clock = lambda moment=now: moment  # type: ignore[misc]
        alive = accounts.session(token)
        if now >= session.expires_at:
            assert alive is None
            break
        assert alive is not None
    else:
        raise AssertionError("the session never ended")


def test_disabling_ends_sessions_and_logins(accounts: Accounts) -> None:
    accounts.add("kari", "a long enough secret", [Role.DRIFT], by="t")
    token, _ = accounts.login("kari", "a long enough secret", "10.0.0.1")
    accounts.set_disabled("kari", True, by="t")
    assert accounts.session(token) is None
    with pytest.raises(LoginFailed):
        accounts.login("kari", "a long enough secret", "10.0.0.1")


def test_throttling_per_user_name_and_per_address(accounts: Accounts) -> None:
    accounts.add("kari", "a long enough secret", [Role.DRIFT], by="t")
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    accounts.clock = lambda: now
    for _ in range(3):
        with pytest.raises(LoginFailed):
            accounts.login("kari", "wrong", "10.0.0.1")
    with pytest.raises(LoginThrottled) as throttled:
        accounts.login("kari", "a long enough secret", "10.0.0.2")
    assert throttled.value.retry_after == timedelta(minutes=10)
    accounts.clock = lambda: now + timedelta(minutes=10, seconds=1)
    accounts.login("kari", "a long enough secret", "10.0.0.2")
    # Many user names from one address: the address is throttled (after 12).
    accounts.clock = lambda: now + timedelta(minutes=30)
    for number in range(12):
        with pytest.raises(LoginFailed):
            accounts.login(f"guess{number}", "x", "10.9.9.9")
    with pytest.raises(LoginThrottled):
        accounts.login("kari", "a long enough secret", "10.9.9.9")


def test_users_command(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[identity]\nname = "t"\nher_id = "1"\n{database_table(store)}\n'
        '[spool]\ndirectory = "s"\n[outbox]\ndirectory = "o"\n'
        '[signing]\nkey_file = "k"\ncert_file = "c"\n',
        encoding="utf-8",
    )
    parser = _parser()

    def run(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        result = users_cli.run(parser.parse_args(["users", *argv, "--config", str(config)]))
        assert result is not None
        return result

    assert run("add", "sara", "--role", "saksbehandler", "--password-stdin",
               stdin="et langt og godt passord\n") == 0
    assert run("roles", "sara", "--set", "saksbehandler,revisor") == 0
    assert run("add", "per", "--role", "sjef", "--password-stdin", stdin="x" * 20) == 1
    assert run("disable", "sara") == 0
    assert run("list") == 0
    out = capsys.readouterr()
    assert "unknown role 'sjef'" in out.err
    assert "sara" in out.out and "disabled" in out.out
    accounts = Accounts(store.users)
    actions = [e.action for e in accounts.audit_entries()]
    assert actions == ["user_disable", "user_roles", "user_add"]
    assert all(e.actor.startswith("cli:") for e in accounts.audit_entries())


def _parser() -> argparse.ArgumentParser:
    from gateway.cli import _parser as gateway_parser

    return gateway_parser()


def test_a_plain_apprec_is_made_readable() -> None:
    apprec = (
        b'<AppRec xmlns="http://www.kith.no/xmlstds/apprec/2004-11-21">'
        b'<Status V="3" DN="OK, feil i delmelding"/>'
        b'<Error V="766" DN="Enkeltregning er datert frem i tid" OT="1002"/>'
        b"<OriginalMsgId><Id>abc</Id></OriginalMsgId>"
        b"<Note>12345678901</Note></AppRec>"
    )
    decoded = readable_reply(apprec)
    assert decoded.summary == (
        "AppRec status 3 (OK, feil i delmelding): 1 feil – 766 Enkeltregning er datert frem i "
        "tid (RegningNr 1002). Svar på MsgId abc."
    )
    assert "12345678901" not in decoded.documents[0].xml
    assert "\n  <Status" in decoded.documents[0].xml
    assert readable_reply(b"not mime, not xml").summary.startswith("Kan ikke leses")


def test_piping_into_head_is_quiet() -> None:
    script = (
        "import sys\nfrom gateway.cli import main\n"
        "sys.exit(main(['rules', 'list']))"
    )
    result = subprocess.run(
        f"{sys.executable} -c \"{script}\" | head -n 1",
        shell=True, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_login_attempts_older_than_a_day_are_removed(store: Store) -> None:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    for later in (timedelta(0), timedelta(hours=23), timedelta(hours=24, minutes=1)):
        store.users.record_login_attempt("kari", "10.0.0.1", False, start + later)
    kept = store.engine.rows('SELECT "at" FROM login_attempts ORDER BY id')
    assert [datetime.fromisoformat(r[0]) for r in kept] == [
        start + timedelta(hours=23),
        start + timedelta(hours=24, minutes=1),
    ]
    assert store.users.failures_since(start, username="kari") == (
        2,
        start + timedelta(hours=24, minutes=1),
    )


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/drift/dodbrev?x=1", "/drift/dodbrev?x=1"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("https://evil.example", "/"),
        ("/ /x", "/"),
    ],
)
def test_after_login_only_a_path_on_this_console(given: str, kept: str) -> None:
    from gateway.web.auth_pages import safe_next

    assert safe_next(given) == kept
