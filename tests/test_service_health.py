"""``gateway health`` checks against real things: a SQLite file, an aiosmtpd server, dovecot,
certificates made here, directories."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import socket
import sqlite3
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.service import health
from gateway.service.health import Check, Status
from gateway.store import Database, Store
from gateway.store.migrations import SCHEMA_VERSION
from gateway.store.postgres import describe
from tests.support.dovecot import DovecotServer, find_dovecot
from tests.support.net import free_port, localhost_certificate
from tests.support.postgres import PostgresServer

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
SECRET = "hemmelig-passord-42"


def closed_port() -> int:
    """A port nothing listens on (bound a moment ago, then released)."""
    return free_port()


# --- certificates ------------------------------------------------------------------------------


def cert_around_now(directory: Path, name: str, from_days: int, to_days: int) -> Path:
    """A certificate valid from NOW + from_days to NOW + to_days."""
    cert, _ = localhost_certificate(
        directory,
        common_name=name,
        files=(f"{name}.crt", f"{name}.key"),
        not_before=NOW + dt.timedelta(days=from_days),
        not_after=NOW + dt.timedelta(days=to_days),
    )
    return cert


async def test_certificate_valid_warn_expired_not_yet(tmp_path: Path) -> None:
    good = cert_around_now(tmp_path, "good", -10, 200)
    soon = cert_around_now(tmp_path, "soon", -10, 12)
    old = cert_around_now(tmp_path, "old", -400, -3)
    future = cert_around_now(tmp_path, "future", 1, 300)

    ok = await health.check_certificate(good, warn_days=30, at=NOW)
    assert ok.status is Status.OK and ok.ok
    assert "in 200 days" in ok.detail and "CN=good" in ok.detail

    warn = await health.check_certificate(soon, warn_days=30, at=NOW)
    assert warn.status is Status.WARN and warn.ok  # a warning does not fail
    assert "in 12 days" in warn.detail

    assert (await health.check_certificate(soon, warn_days=10, at=NOW)).status is Status.OK

    expired = await health.check_certificate(old, warn_days=30, at=NOW)
    assert expired.status is Status.FAIL and not expired.ok
    assert "EXPIRED" in expired.detail and "3 days ago" in expired.detail

    early = await health.check_certificate(future, at=NOW)
    assert early.status is Status.FAIL and "not valid before" in early.detail

    assert health.days_to_expiry(good, at=NOW) == pytest.approx(200.0)
    assert health.days_to_expiry(old, at=NOW) == pytest.approx(-3.0)


async def test_a_chain_file_is_judged_by_its_first_expiry(tmp_path: Path) -> None:
    leaf = cert_around_now(tmp_path, "leaf", -1, 5)
    ca = cert_around_now(tmp_path, "ca", -1, 900)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(ca.read_bytes() + leaf.read_bytes())
    result = await health.check_certificate(chain, warn_days=30, at=NOW)
    assert result.status is Status.WARN and "CN=leaf" in result.detail
    assert health.days_to_expiry(chain, at=NOW) == pytest.approx(5.0)


async def test_certificate_missing_or_not_pem(tmp_path: Path) -> None:
    missing = await health.check_certificate(tmp_path / "nope.pem")
    assert missing.status is Status.FAIL and "No such file" in missing.detail
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    assert (await health.check_certificate(garbage)).status is Status.FAIL
    with pytest.raises(ValueError):
        health.days_to_expiry(garbage)


# --- database ----------------------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.sqlite3"
    Store(path).close()
    return path


def schema_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT version FROM schema_version").fetchone()[0])


async def test_database_ok_and_read_only(database: Path) -> None:
    version = schema_version(database)
    before = database.read_bytes()  # noqa: ASYNC240 - a test's own small file
    result = await health.check_database(database, expected_version=version)
    assert result.status is Status.OK, result.detail
    assert f"schema version {version}" in result.detail
    assert database.read_bytes() == before  # noqa: ASYNC240


async def test_database_in_use_by_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlite3"
    store = Store(path)  # WAL, held open as the daemon holds it
    try:
        assert (await health.check_database(path)).status is Status.OK
    finally:
        store.close()


async def test_database_schema_versions(database: Path) -> None:
    version = schema_version(database)
    newer = await health.check_database(database, expected_version=version - 1)
    assert newer.status is Status.FAIL and "newer than" in newer.detail
    older = await health.check_database(database, expected_version=version + 1)
    assert older.status is Status.WARN and "migrated" in older.detail


@pytest.mark.postgres
@pytest.mark.integration
async def test_database_on_postgresql(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("health")
    empty = await health.check_database(Database(url=url))
    assert empty.status is Status.FAIL and "not a gateway database" in empty.detail
    Store(Database(url=url)).close()
    result = await health.check_database(Database(url=url), expected_version=SCHEMA_VERSION)
    assert result.status is Status.OK, result.detail
    assert result.detail == (
        f"{describe(url)}: schema version {SCHEMA_VERSION}, 0 messages received"
    )
    postgres_server.drop_database("health")
    gone = await health.check_database(Database(url=url), timeout=5)
    assert gone.status is Status.FAIL and "health" in gone.detail


async def test_database_missing_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite3"
    result = await health.check_database(path)
    assert result.status is Status.FAIL and "does not exist" in result.detail
    assert not path.exists()


async def test_database_that_is_not_ours(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE something (x)")
    result = await health.check_database(other)
    assert result.status is Status.FAIL and "not a gateway database" in result.detail
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database file at all" * 200)
    assert (await health.check_database(junk)).status is Status.FAIL


# --- directories -------------------------------------------------------------------------------


async def test_directory_writable(tmp_path: Path) -> None:
    result = await health.check_directory_writable(tmp_path)
    assert result.status is Status.OK
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 - the probe file is gone
    missing = await health.check_directory_writable(tmp_path / "missing")
    assert missing.status is Status.FAIL
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert (await health.check_directory_writable(a_file)).status is Status.FAIL


# --- SMTP (aiosmtpd) ---------------------------------------------------------------------------


class Sink:
    """Accepts nothing worth keeping: the check never sends mail."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        return "250 OK"


def authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"gateway"
        and auth_data.password == SECRET.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # Self-signed for localhost/127.0.0.1, valid from 5 minutes ago for a day.
    return localhost_certificate(tmp_path_factory.mktemp("tls"))


def server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


@pytest.fixture
def smtp_plain() -> Iterator[tuple[int, Sink]]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, sink
    controller.stop()


@pytest.fixture
def smtp_starttls(tls_files: tuple[Path, Path]) -> Iterator[int]:
    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_context(tls_files),
        require_starttls=True,
        authenticator=authenticate,
    )
    controller.start()
    yield controller.port
    controller.stop()


@pytest.fixture
def smtp_implicit_tls(tls_files: tuple[Path, Path]) -> Iterator[int]:
    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=server_context(tls_files),
        authenticator=authenticate,
        # aiosmtpd only counts STARTTLS as TLS; this whole connection is TLS.
        auth_require_tls=False,
    )
    controller.start()
    yield controller.port
    controller.stop()


@pytest.mark.integration
async def test_smtp_plain_ehlo_sends_nothing(smtp_plain: tuple[int, Sink]) -> None:
    port, sink = smtp_plain
    result = await health.check_smtp("127.0.0.1", port, "none", timeout=5)
    assert result.status is Status.OK, result.detail
    assert result.name == f"smtp 127.0.0.1:{port}"
    assert sink.messages == 0


@pytest.mark.integration
async def test_smtp_starttls_with_login(smtp_starttls: int, tls_files: tuple[Path, Path]) -> None:
    cafile = str(tls_files[0])
    result = await health.check_smtp(
        "127.0.0.1", smtp_starttls, "starttls", "gateway", SECRET, 5, cafile=cafile
    )
    assert result.status is Status.OK, result.detail
    assert "logged in as gateway" in result.detail

    wrong = await health.check_smtp(
        "127.0.0.1", smtp_starttls, "starttls", "gateway", "wrong-" + SECRET, 5, cafile=cafile
    )
    assert wrong.status is Status.FAIL and wrong.detail.startswith("login failed")
    assert SECRET not in wrong.detail

    # Without STARTTLS the server refuses to go on: "none" must not silently upgrade or pass.
    plain = await health.check_smtp("127.0.0.1", smtp_starttls, "none", "gateway", SECRET, 5)
    assert plain.status is Status.FAIL, plain.detail


@pytest.mark.integration
async def test_smtp_implicit_tls_needs_a_trusted_certificate(
    smtp_implicit_tls: int, tls_files: tuple[Path, Path]
) -> None:
    untrusted = await health.check_smtp("127.0.0.1", smtp_implicit_tls, "tls", timeout=5)
    assert untrusted.status is Status.FAIL
    assert "certificate" in untrusted.detail.lower(), untrusted.detail
    trusted = await health.check_smtp(
        "127.0.0.1", smtp_implicit_tls, "tls", "gateway", SECRET, 5, cafile=str(tls_files[0])
    )
    assert trusted.status is Status.OK, trusted.detail


async def test_smtp_closed_port_and_bad_security() -> None:
    port = closed_port()
    result = await health.check_smtp("127.0.0.1", port, "none", timeout=3)
    assert result.status is Status.FAIL
    assert result.detail.startswith("connect failed"), result.detail
    bad = await health.check_smtp("127.0.0.1", port, "ssl", timeout=3)
    assert bad.status is Status.FAIL and "unknown security" in bad.detail


async def test_smtp_silent_server_times_out() -> None:
    with socket.socket() as silent:  # accepts (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = asyncio.get_running_loop().time()
        result = await health.check_smtp("127.0.0.1", port, "none", timeout=0.5)
        elapsed = asyncio.get_running_loop().time() - started
    assert result.status is Status.FAIL and "timed out" in result.detail, result.detail
    assert elapsed < 3


# --- IMAP (dovecot) ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    if find_dovecot() is None:
        pytest.skip("dovecot is not installed")
    with DovecotServer({"claims": SECRET}, tls=True) as server:
        yield server


@pytest.mark.integration
@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
async def test_imap_login(dovecot: DovecotServer, security: str) -> None:
    port = dovecot.tls_port if security == "tls" else dovecot.port
    result = await health.check_imap_login(
        "127.0.0.1", port, security, "claims", SECRET, 5, cafile=str(dovecot.cert_file)
    )
    assert result.status is Status.OK, result.detail
    assert result.name == f"imap claims@127.0.0.1:{port}"


@pytest.mark.integration
async def test_imap_wrong_password_and_untrusted_tls(dovecot: DovecotServer) -> None:
    wrong = await health.check_imap_login(
        "127.0.0.1", dovecot.port, "none", "claims", "wrong-" + SECRET, 5
    )
    assert wrong.status is Status.FAIL and "login refused" in wrong.detail, wrong.detail
    assert SECRET not in wrong.detail
    untrusted = await health.check_imap_login(
        "127.0.0.1", dovecot.tls_port, "tls", "claims", SECRET, 5
    )
    assert untrusted.status is Status.FAIL and "certificate" in untrusted.detail.lower()
    untrusted_starttls = await health.check_imap_login(
        "127.0.0.1", dovecot.port, "starttls", "claims", SECRET, 5
    )
    assert untrusted_starttls.status is Status.FAIL
    assert untrusted_starttls.detail.startswith("STARTTLS failed"), untrusted_starttls.detail


async def test_imap_closed_port() -> None:
    port = closed_port()
    result = await health.check_imap_login("127.0.0.1", port, "none", "claims", SECRET, 3)
    assert result.status is Status.FAIL
    assert result.detail == "connect failed: connection refused"


# --- running and reporting ---------------------------------------------------------------------


async def ok_check() -> Check:
    return Check("one", Status.OK, "fine")


async def warn_check() -> Check:
    return Check("certificate x", Status.WARN, "renew soon")


async def failing_check() -> Check:
    return Check("two", Status.FAIL, "down")


async def crashing_check() -> Check:
    raise RuntimeError("a bug in a check")


async def test_run_checks_text_and_exit_codes() -> None:
    out = io.StringIO()
    assert await health.run_checks([ok_check(), warn_check()], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["OK", "one", "fine"]
    assert lines[1].startswith("WARN  certificate x  renew soon")

    out = io.StringIO()
    assert await health.run_checks([ok_check(), failing_check()], out=out) == 1
    assert "FAIL  two" in out.getvalue()


async def test_run_checks_json_and_a_crashing_check() -> None:
    out = io.StringIO()
    code = await health.run_checks([warn_check(), crashing_check()], as_json=True, out=out)
    assert code == 1
    document = json.loads(out.getvalue())
    assert document["ok"] is False
    assert document["checks"][0] == {
        "name": "certificate x", "status": "warn", "ok": True, "detail": "renew soon"
    }
    assert document["checks"][1]["status"] == "fail"
    assert "a bug in a check" in document["checks"][1]["detail"]


@pytest.mark.integration
async def test_everything_together(
    database: Path, tmp_path: Path, smtp_plain: tuple[int, Sink]
) -> None:
    """What ``gateway health`` will run: all concurrently, one line each."""
    cert = cert_around_now(tmp_path, "signing", -1, 20)
    out = io.StringIO()
    code = await health.run_checks(
        [
            health.check_database(database),
            health.check_directory_writable(tmp_path),
            health.check_smtp("127.0.0.1", smtp_plain[0], "none", timeout=5),
            health.check_imap_login("127.0.0.1", closed_port(), "none", "claims", SECRET, 3),
            health.check_certificate(cert, warn_days=30, at=NOW),
        ],
        out=out,
    )
    statuses = [line.split()[0] for line in out.getvalue().splitlines()]
    assert statuses == ["OK", "OK", "OK", "FAIL", "WARN"]
    assert code == 1
