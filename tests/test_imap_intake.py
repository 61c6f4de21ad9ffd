"""IMAP intake against a real dovecot: commit before move, retries, crashes, restarts, IDLE.

The intake here is a fake with the daemon's contract: it commits into SQLite, is idempotent per
``source_ref`` and can be told to fail. dovecot comes from Debian's dovecot-imapd (``make deps``);
without it these tests skip locally and fail in CI.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.errors import ConfigurationError, StorageError, TransportError
from gateway.inbox.imap import (
    MailboxConfig,
    MailboxPoller,
    check_login,
    mailboxes_from,
)
from gateway.inbox.imap.tracking import MailTracker
from gateway.records import Outcome
from gateway.settings import Table
from gateway.store import Database, Store
from tests.support.dovecot import MISSING_REASON, DovecotServer, find_dovecot

USERS = {"claims": "s3cret-claims", "other": "s3cret-other"}


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot_installed() -> None:
    """Skip where dovecot is not installed; in CI its absence is a failure."""
    if find_dovecot() is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have dovecot installed: {MISSING_REASON}")
        pytest.skip(MISSING_REASON)


@pytest.fixture
def make_server(dovecot_installed: None) -> Iterator[Callable[..., DovecotServer]]:
    """Start dovecot servers (stopped and removed at the end)."""
    servers: list[DovecotServer] = []

    def factory(**options: Any) -> DovecotServer:
        server = DovecotServer(USERS, **options)
        servers.append(server)
        server.start()
        return server

    yield factory
    for server in servers:
        server.close()


@pytest.fixture
def dovecot(make_server: Callable[..., DovecotServer]) -> DovecotServer:
    return make_server()


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[MailTracker]:
    # On SQLite: these tests are about IMAP; the tracker's SQL runs on both engines in
    # tests/test_store_instances.py.
    store = Store(tmp_path / "claims.sqlite3")
    yield MailTracker(store.engine)
    store.close()


def write_password(tmp_path: Path, user: str, password: str | None = None) -> Path:
    path = tmp_path / f"{user}.password"
    path.write_text((password or USERS[user]) + "\n", encoding="utf-8")
    return path


def mailbox(
    server: DovecotServer, tmp_path: Path, user: str = "claims", **overrides: Any
) -> MailboxConfig:
    data: dict[str, Any] = {
        "name": user,
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "user": user,
        "password_file": str(write_password(tmp_path, user)),
        "poll_interval": 0.1,
        "idle_timeout": 5,
        "connect_timeout": 5,
        "command_timeout": 10,
    }
    data.update(overrides)
    return MailboxConfig.from_mapping(data, tmp_path)


def mail(n: int, *, message_id: str | None = None, body: str = "") -> bytes:
    mid = message_id or f"<mail-{n}@sender.test>"
    return (
        f"From: sender@sender.test\r\nTo: mottak@kuhr.test\r\nMessage-ID: {mid}\r\n"
        f"Subject: claim {n}\r\n\r\nbody {n} {body}\r\n"
    ).encode()


class FakeIntake:
    """The daemon's contract: commit (into SQLite) then return; idempotent per source_ref."""

    capacity = 1

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS received (source_ref TEXT PRIMARY KEY, source TEXT, "
            "source_name TEXT, raw BLOB)"
        )
        self.calls: list[str] = []
        #: Called before committing; may raise (not committed) or do anything else.
        self.before: Callable[[bytes, str], Awaitable[None]] | None = None
        #: Called after committing, before returning.
        self.after: Callable[[bytes, str], Awaitable[None]] | None = None

    async def __call__(
        self, raw: bytes, *, source: str, source_ref: str, source_name: str
    ) -> Outcome:
        self.calls.append(source_ref)
        if self.before is not None:
            await self.before(raw, source_ref)
        self.db.execute(
            "INSERT OR IGNORE INTO received VALUES (?, ?, ?, ?)",
            (source_ref, source, source_name, raw),
        )
        self.db.commit()
        if self.after is not None:
            await self.after(raw, source_ref)
        return Outcome.ACCEPTED

    def committed(self) -> dict[str, bytes]:
        return {r: bytes(b) for r, b in self.db.execute("SELECT source_ref, raw FROM received")}

    def sources(self) -> set[str]:
        return {r for (r,) in self.db.execute("SELECT DISTINCT source FROM received")}


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[FakeIntake]:
    fake = FakeIntake(tmp_path / "intake.sqlite3")
    yield fake
    fake.db.close()


async def wait_until(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def stop_poller(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(task, 10)


async def run_all(pollers: list[MailboxPoller], stop: asyncio.Event) -> None:
    """Several mailboxes side by side, as the daemon runs them."""
    async with asyncio.TaskGroup() as group:
        for poller in pollers:
            group.create_task(poller.run(stop), name=poller.name)


def start(poller: MailboxPoller) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(poller.run(stop))


FAST: dict[str, Any] = {"backoff_initial": 0.05, "backoff_max": 0.3}


# --- integration ----------------------------------------------------------------------------------


@pytest.mark.integration
async def test_mails_are_committed_before_they_are_moved(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.append_many("claims", [mail(1), mail(2), mail(3)])
    uidvalidity = dovecot.uidvalidity("claims")
    still_in_inbox: list[bool] = []

    async def check_inbox(raw: bytes, ref: str) -> None:
        uid = int(ref.rsplit(":", 1)[1])
        still_in_inbox.append(uid in await asyncio.to_thread(dovecot.list_uids, "claims"))

    intake.before = check_inbox
    poller = MailboxPoller(mailbox(dovecot, tmp_path), intake, tracker, **FAST)
    stop, task = start(poller)
    await wait_until(lambda: poller.committed == 3)
    await stop_poller(stop, task)

    assert still_in_inbox == [True, True, True]
    assert dovecot.list_uids("claims") == []
    assert sorted(dovecot.fetch_all("claims", "Processed")) == sorted([mail(1), mail(2), mail(3)])
    committed = intake.committed()
    assert set(committed) == {f"imap:claims:{uidvalidity}:{uid}" for uid in (1, 2, 3)}
    assert committed[f"imap:claims:{uidvalidity}:2"] == mail(2)
    assert intake.sources() == {"imap:claims"}
    rows = tracker.mails("claims")
    assert [(r.uid, r.state, r.message_id) for r in rows] == [
        (1, "moved", "<mail-1@sender.test>"),
        (2, "moved", "<mail-2@sender.test>"),
        (3, "moved", "<mail-3@sender.test>"),
    ]
    assert tracker.uidvalidity("claims") == uidvalidity


@pytest.mark.integration
async def test_two_instances_poll_a_mailbox_one_at_a_time_and_take_over_from_each_other(
    dovecot: DovecotServer, intake: FakeIntake, tmp_path: Path, database: Database
) -> None:
    """Each instance has its own engine on one database; only the lease holder connects."""
    stores = [Store(database), Store(database)]
    try:
        pollers = [
            MailboxPoller(
                mailbox(dovecot, tmp_path), intake, MailTracker(s.engine), lease_check=0.2, **FAST
            )
            for s in stores
        ]
        first_stop, first = start(pollers[0])
        await wait_until(lambda: pollers[0].connections == 1)
        second_stop, second = start(pollers[1])
        dovecot.append_many("claims", [mail(1), mail(2)])
        await wait_until(lambda: pollers[0].committed == 2)
        await asyncio.sleep(0.6)  # three of the second's tries to take the mailbox
        assert pollers[1].connections == 0

        await stop_poller(first_stop, first)  # the holder goes: the other takes over
        dovecot.append_many("claims", [mail(3)])
        await wait_until(lambda: pollers[1].committed == 1, within=10)
        assert pollers[1].connections == 1
        await stop_poller(second_stop, second)
        assert len(intake.calls) == 3  # each mail taken in once
    finally:
        for s in stores:
            s.close()


@pytest.mark.integration
async def test_a_failing_intake_leaves_the_mail_and_it_is_retried(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.append_many("claims", [mail(1), mail(2)])
    failures = 0

    async def fail_mail_1_twice(raw: bytes, ref: str) -> None:
        nonlocal failures
        if raw == mail(1) and failures < 2:
            failures += 1
            # The mail is still there while the intake fails.
            assert 1 in await asyncio.to_thread(dovecot.list_uids, "claims")
            raise StorageError("database is locked")

    intake.before = fail_mail_1_twice
    poller = MailboxPoller(mailbox(dovecot, tmp_path), intake, tracker, **FAST)
    stop, task = start(poller)
    await wait_until(lambda: poller.committed == 2)
    await stop_poller(stop, task)

    assert failures == 2 and poller.failures == 2
    assert len(intake.committed()) == 2
    assert dovecot.list_uids("claims") == []
    assert len(dovecot.list_uids("claims", "Processed")) == 2


@pytest.mark.integration
async def test_crash_between_commit_and_move_refetches_and_moves_once(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.append("claims", mail(1))
    config = mailbox(dovecot, tmp_path)

    async def crash_after_commit(raw: bytes, ref: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # the process dies right after the commit, before the move

    intake.after = crash_after_commit
    first = MailboxPoller(config, intake, tracker, **FAST)
    stop, task = start(first)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert len(intake.committed()) == 1
    assert dovecot.list_uids("claims") == [1]  # committed, not moved

    intake.after = None
    second = MailboxPoller(config, intake, tracker, **FAST)
    stop, task = start(second)
    await wait_until(lambda: second.committed == 1)
    await stop_poller(stop, task)

    assert len(intake.committed()) == 1
    assert dovecot.list_uids("claims") == []
    assert dovecot.fetch_all("claims", "Processed") == [mail(1)]
    assert [r.state for r in tracker.mails()] == ["moved"]


@pytest.mark.integration
async def test_a_mail_the_tracker_knows_as_committed_is_only_moved(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.append("claims", mail(1))
    uidvalidity = dovecot.uidvalidity("claims")
    tracker.check_uidvalidity("claims", uidvalidity)
    tracker.record_committed(
        mailbox="claims",
        uidvalidity=uidvalidity,
        uid=1,
        message_id="<mail-1@sender.test>",
        sha256=hashlib.sha256(mail(1)).hexdigest(),
        source_ref=f"imap:claims:{uidvalidity}:1",
    )
    poller = MailboxPoller(mailbox(dovecot, tmp_path), intake, tracker, **FAST)
    with capture_logs() as logs:
        stop, task = start(poller)
        await wait_until(lambda: poller.committed == 1)
        await stop_poller(stop, task)

    assert intake.calls == []
    assert dovecot.list_uids("claims") == []
    assert any(e["event"] == "imap_mail_already_committed" for e in logs)
    assert [r.state for r in tracker.mails()] == ["moved"]


@pytest.mark.integration
async def test_a_reused_uid_with_other_bytes_gets_its_own_source_ref(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.append("claims", mail(2))
    uidvalidity = dovecot.uidvalidity("claims")
    tracker.check_uidvalidity("claims", uidvalidity)
    earlier = f"imap:claims:{uidvalidity}:1"
    tracker.record_committed(
        mailbox="claims",
        uidvalidity=uidvalidity,
        uid=1,
        message_id="<mail-1@sender.test>",
        sha256="0" * 64,
        source_ref=earlier,
    )
    poller = MailboxPoller(mailbox(dovecot, tmp_path), intake, tracker, **FAST)
    stop, task = start(poller)
    await wait_until(lambda: poller.committed == 1)
    await stop_poller(stop, task)

    (ref,) = intake.committed()
    assert ref.startswith(earlier + ":") and ref != earlier
    assert dovecot.list_uids("claims") == []


@pytest.mark.integration
async def test_the_same_mail_delivered_twice_is_tracked_as_a_duplicate(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    resent = mail(9, message_id="<mail-1@sender.test>", body="relayed again")
    dovecot.append_many("claims", [mail(1), mail(1), resent])
    poller = MailboxPoller(mailbox(dovecot, tmp_path), intake, tracker, **FAST)
    with capture_logs() as logs:
        stop, task = start(poller)
        await wait_until(lambda: poller.committed == 3)
        await stop_poller(stop, task)

    first, second, third = tracker.mails()
    assert first.duplicate_of is None
    assert second.duplicate_of == first.id and second.sha256 == first.sha256
    assert third.duplicate_of == first.id and third.sha256 != first.sha256
    assert third.message_id == first.message_id
    # All three go through the intake (the pipeline answers duplicates again), each once.
    assert len(intake.committed()) == 3 and len(intake.calls) == 3
    matched = [e["matched_by"] for e in logs if e["event"] == "imap_duplicate_delivery"]
    assert matched == ["sha256", "message_id"]
    assert dovecot.list_uids("claims") == []


@pytest.mark.integration
async def test_a_server_restart_mid_run_loses_nothing(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.append_many("claims", [mail(n) for n in range(1, 6)])
    restarted = False

    async def restart_after_mail_3(raw: bytes, ref: str) -> None:
        nonlocal restarted
        if raw == mail(3) and not restarted:
            restarted = True
            # Committed; the server goes away before the batch is moved.
            await asyncio.to_thread(dovecot.restart)

    intake.after = restart_after_mail_3
    poller = MailboxPoller(mailbox(dovecot, tmp_path), intake, tracker, **FAST)
    with capture_logs() as logs:
        stop, task = start(poller)
        await wait_until(lambda: [r.state for r in tracker.mails()] == ["moved"] * 5)
        # Idle again on the new connection; a restart while idling is noticed too.
        await asyncio.to_thread(dovecot.restart)
        await asyncio.to_thread(dovecot.append, "claims", mail(6))
        await wait_until(lambda: [r.state for r in tracker.mails()] == ["moved"] * 6)
        await stop_poller(stop, task)

    assert restarted
    assert poller.connections >= 3
    assert any(e["event"] == "imap_mailbox_failed" for e in logs)
    assert sorted(dovecot.fetch_all("claims", "Processed")) == sorted(mail(n) for n in range(1, 7))
    assert len(intake.committed()) == 6
    assert all(r.state == "moved" for r in tracker.mails())


@pytest.mark.integration
async def test_a_mailbox_with_a_wrong_password_does_not_stop_the_others(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.append("claims", mail(1))
    dovecot.append("other", mail(2))
    good = mailbox(dovecot, tmp_path, "claims")
    (tmp_path / "wrong.pw").write_text("wrong\n", encoding="utf-8")
    bad = mailbox(dovecot, tmp_path, "other", password_file="wrong.pw")
    stop = asyncio.Event()
    with capture_logs() as logs:
        pollers = [MailboxPoller(config, intake, tracker, **FAST) for config in (bad, good)]
        task = asyncio.create_task(run_all(pollers, stop))
        await wait_until(lambda: len(intake.committed()) == 1)
        await wait_until(lambda: sum(e["event"] == "imap_mailbox_failed" for e in logs) >= 3)
        await asyncio.to_thread(dovecot.append, "claims", mail(3))
        await wait_until(lambda: len(intake.committed()) == 2)
        await stop_poller(stop, task)

    failed = [e for e in logs if e["event"] == "imap_mailbox_failed"]
    assert all(e["imap_mailbox"] == "other" and "refused" in e["error"] for e in failed)
    assert [e["attempt"] for e in failed[:3]] == [1, 2, 3]
    assert dovecot.list_uids("other") == [1]
    assert dovecot.list_uids("claims") == []
    with pytest.raises(TransportError, match="refused"):
        await check_login(bad)
    await check_login(good)


@pytest.mark.integration
async def test_more_mails_than_the_batch_size_go_in_batches(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.append_many("claims", [mail(n) for n in range(1, 31)])
    poller = MailboxPoller(mailbox(dovecot, tmp_path, batch_size=7), intake, tracker, **FAST)
    with capture_logs() as logs:
        stop, task = start(poller)
        await wait_until(lambda: poller.committed == 30)
        await stop_poller(stop, task)

    assert [e["mails"] for e in logs if e["event"] == "imap_batch_done"] == [7, 7, 7, 7, 2]
    assert dovecot.list_uids("claims") == []
    assert len(dovecot.list_uids("claims", "Processed")) == 30
    assert len(intake.committed()) == 30


@pytest.mark.integration
async def test_idle_wakes_up_promptly_on_a_new_mail(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    config = mailbox(dovecot, tmp_path, poll_interval=60, idle_timeout=60)
    poller = MailboxPoller(config, intake, tracker, **FAST)
    stop, task = start(poller)
    await wait_until(lambda: poller.connections == 1)
    await asyncio.sleep(0.3)  # first (empty) pass done, now idling
    started = time.monotonic()
    await asyncio.to_thread(dovecot.append, "claims", mail(1))
    await wait_until(lambda: poller.committed == 1, within=5)
    elapsed = time.monotonic() - started
    stopped = time.monotonic()
    await stop_poller(stop, task)

    assert elapsed < 2.0, f"IDLE took {elapsed:.2f} s to notice a new mail"
    assert time.monotonic() - stopped < 2.0, "stop must end IDLE at once"


@pytest.mark.integration
async def test_without_move_and_idle_it_polls_and_copies_then_expunges(
    make_server: Callable[..., DovecotServer],
    tracker: MailTracker,
    intake: FakeIntake,
    tmp_path: Path,
) -> None:
    server = make_server(capability="IMAP4rev1 UIDPLUS")
    server.append_many("claims", [mail(1), mail(2)])
    poller = MailboxPoller(mailbox(server, tmp_path, poll_interval=0.2), intake, tracker, **FAST)
    with capture_logs() as logs:
        stop, task = start(poller)
        await wait_until(lambda: poller.committed == 2)
        await asyncio.to_thread(server.append, "claims", mail(3))
        await wait_until(lambda: poller.committed == 3)
        await stop_poller(stop, task)

    assert any(e["event"] == "imap_idle_not_offered" for e in logs)
    assert {e["removed"] for e in logs if e["event"] == "imap_batch_done"} == {
        "copied_and_expunged"
    }
    assert server.list_uids("claims") == []
    assert len(server.list_uids("claims", "Processed")) == 3


@pytest.mark.integration
async def test_after_expunge_flags_and_expunges(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.append_many("claims", [mail(1), mail(2)])
    poller = MailboxPoller(mailbox(dovecot, tmp_path, after="expunge"), intake, tracker, **FAST)
    stop, task = start(poller)
    await wait_until(lambda: poller.committed == 2)
    await stop_poller(stop, task)

    assert dovecot.list_uids("claims") == []
    assert dovecot.list_uids("claims", "Processed") == []
    assert len(intake.committed()) == 2


@pytest.mark.integration
async def test_a_uidvalidity_change_is_logged_and_the_folder_rescanned(
    dovecot: DovecotServer, tracker: MailTracker, intake: FakeIntake, tmp_path: Path
) -> None:
    dovecot.create_folder("claims", "Claims")
    dovecot.append("claims", mail(1), "Claims")
    config = mailbox(dovecot, tmp_path, folder="Claims", after="expunge")
    poller = MailboxPoller(config, intake, tracker, **FAST)
    stop, task = start(poller)
    await wait_until(lambda: poller.committed == 1)
    await stop_poller(stop, task)
    before = tracker.uidvalidity("claims")

    dovecot.delete_folder("claims", "Claims")
    dovecot.create_folder("claims", "Claims")
    dovecot.append_many("claims", [mail(1), mail(2)], "Claims")
    poller = MailboxPoller(config, intake, tracker, **FAST)
    with capture_logs() as logs:
        stop, task = start(poller)
        await wait_until(lambda: poller.committed == 2)
        await stop_poller(stop, task)

    changed = [e for e in logs if e["event"] == "imap_uidvalidity_changed"]
    assert len(changed) == 1 and changed[0]["previous"] == before
    assert tracker.uidvalidity("claims") != before
    refs = sorted(intake.committed())
    assert len(refs) == 3 and len({r.split(":")[2] for r in refs}) == 2
    # The same bytes under the new UIDVALIDITY: recognised as delivered before.
    assert [e["matched_by"] for e in logs if e["event"] == "imap_duplicate_delivery"] == ["sha256"]


@pytest.mark.integration
@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls(
    make_server: Callable[..., DovecotServer],
    tracker: MailTracker,
    intake: FakeIntake,
    tmp_path: Path,
    security: str,
) -> None:
    server = make_server(tls=True)
    server.append("claims", mail(1))
    config = mailbox(
        server,
        tmp_path,
        security=security,
        port=server.tls_port if security == "tls" else server.port,
        ca_file=str(server.cert_file),
    )
    await check_login(config)
    poller = MailboxPoller(config, intake, tracker, **FAST)
    stop, task = start(poller)
    await wait_until(lambda: poller.committed == 1)
    await stop_poller(stop, task)
    assert server.list_uids("claims") == []
    # Not trusting the test CA: the handshake fails, as a TransportError.
    untrusted = mailbox(
        server,
        tmp_path,
        security=security,
        port=server.tls_port if security == "tls" else server.port,
    )
    with pytest.raises(TransportError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        await check_login(untrusted)


@pytest.mark.integration
async def test_check_login_on_a_closed_port_is_a_transport_error(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    config = mailbox(dovecot, tmp_path)
    dovecot.stop()
    with pytest.raises(TransportError, match="connect"):
        await check_login(config)


# --- configuration and helpers (no server) --------------------------------------------------------


def valid(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "claims",
        "host": "imap.example.test",
        "user": "claims",
        "password_file": str(write_password(tmp_path, "claims")),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_defaults_and_relative_password_file(tmp_path: Path) -> None:
    write_password(tmp_path, "claims")
    config = MailboxConfig.from_mapping(valid(tmp_path, password_file="claims.password"), tmp_path)
    assert config.port == 993 and config.security == "tls" and config.folder == "INBOX"
    assert config.after == "move" and config.idle and config.batch_size == 100
    assert config.password_file == (tmp_path / "claims.password").resolve()
    assert config.password() == USERS["claims"]
    assert "s3cret" not in repr(config)
    assert config.source == "imap:claims"
    assert config.source_ref(7, 42) == "imap:claims:7:42"
    assert MailboxConfig.from_mapping(valid(tmp_path, security="starttls"), tmp_path).port == 143


def test_password_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TEST_IMAP_PW", "from-env")
    config = MailboxConfig.from_mapping(
        valid(tmp_path, password_file=None, password_env="GATEWAY_TEST_IMAP_PW"), tmp_path
    )
    assert config.password() == "from-env"
    monkeypatch.delenv("GATEWAY_TEST_IMAP_PW")
    with pytest.raises(ConfigurationError, match="password_env"):
        MailboxConfig.from_mapping(
            valid(tmp_path, password_file=None, password_env="GATEWAY_TEST_IMAP_PW"), tmp_path
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "bad name"}, r"imap\.mailboxes\.name"),
        ({"host": None}, r"missing required key 'imap\.mailboxes\['claims'\]\.host'"),
        ({"host": ""}, r"\['claims'\]\.host must be a non-empty string"),
        ({"security": "ssl"}, r"\.security must be one of 'tls', 'starttls', 'none'"),
        ({"port": 0}, r"\.port must be an integer from 1 to 65535"),
        ({"port": "993"}, r"\.port must be an integer"),
        ({"batch_size": 500}, r"\.batch_size must be an integer from 1 to 200"),
        ({"batch_size": 0}, r"\.batch_size"),
        ({"poll_interval": -1}, r"\.poll_interval must be a positive number"),
        ({"idle": "yes"}, r"\.idle must be true or false"),
        ({"after": "delete"}, r"\.after must be one of 'move', 'expunge'"),
        ({"folder": "Innboks/Krav æ"}, r"\.folder must be an ASCII folder name"),
        ({"processed_folder": "INBOX"}, r"\.processed_folder must differ from folder"),
        ({"password": "hunter2"}, r"\.password: the password must not be in the config"),
        ({"password_env": "X"}, r"exactly one of password_file and password_env"),
        ({"password_file": None}, r"exactly one of password_file and password_env"),
        ({"password_file": "missing.pw"}, r"\.password_file: .*cannot read password_file"),
        ({"ca_file": "missing.pem"}, r"\.ca_file: no such file"),
        ({"pasword_file": "x"}, r"unknown key\(s\) imap\.mailboxes\['claims'\]\.pasword_file"),
    ],
)
def test_config_errors_name_the_key(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    data = valid(tmp_path)
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    with pytest.raises(ConfigurationError, match=message):
        MailboxConfig.from_mapping(data, tmp_path)


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.pw").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="empty"):
        MailboxConfig.from_mapping(valid(tmp_path, password_file="empty.pw"), tmp_path)


def test_mailboxes_from_wants_unique_names(tmp_path: Path) -> None:
    def mailboxes(value: object) -> tuple[MailboxConfig, ...]:
        imap = Table({} if value is None else {"mailboxes": value}, base=tmp_path, where="imap")
        return mailboxes_from(imap)

    one = valid(tmp_path)
    assert mailboxes(None) == ()
    assert [c.name for c in mailboxes([one])] == ["claims"]
    with pytest.raises(ConfigurationError, match="used twice: claims"):
        mailboxes([one, dict(one)])
    with pytest.raises(ConfigurationError, match=r"imap\.mailboxes must be an array"):
        mailboxes(one)
    with pytest.raises(ConfigurationError, match=r"imap\.mailboxes\[1\]"):
        mailboxes([one, {"name": "x", "host": 3}])
