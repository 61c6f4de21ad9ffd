"""One bad file never stops the others: hostile names, kinds and timings in ``incoming/``.

Each test reproduces a case seen against the daemon (issue 12): a name too long once prefixed,
a file vanishing between the scan and its ``lstat``, a name that is not UTF-8, symlinks, FIFOs,
directories and abandoned dot files, a slowly written file, a second daemon on the same spool,
and a file larger than the largest message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.config import SpoolConfig
from gateway.ebxml.unwrap import Truncated
from gateway.errors import ConfigurationError
from gateway.inbox import spool as spool_module
from gateway.inbox.reading import EVIDENCE_BYTES, read_bounded
from gateway.inbox.spool import Spool
from gateway.inbox.spool_names import NAME_MAX
from gateway.inbox.spool_service import SpoolInbox
from gateway.records import Outcome


def make_spool(
    tmp_path: Path, *, settle: float = 0.0, shared: bool = False, **kwargs: object
) -> Spool:
    config = SpoolConfig(
        directory=tmp_path / "spool",
        poll_interval=0.05,
        max_recoveries=3,
        settle_seconds=settle,
        shared=shared,
    )
    return Spool(config, **kwargs)  # type: ignore[arg-type]


class Recorder:
    """A fake intake: records what it was handed."""

    capacity = 1

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, str, str]] = []

    async def __call__(
        self, raw: bytes, *, source: str, source_ref: str, source_name: str
    ) -> Outcome:
        self.seen.append((raw, source_ref, source_name))
        return Outcome.ACCEPTED


@pytest.fixture
def parked_kinds() -> list[str]:
    return []


@pytest.fixture
def spool(tmp_path: Path, parked_kinds: list[str]) -> Iterator[Spool]:
    s = make_spool(tmp_path, on_parked=parked_kinds.append, abandoned_after=3600.0)
    yield s
    s.stop_watching()
    s.unlock()


def reason_of(spool: Spool, original: str) -> str:
    (reason,) = [p for p in spool.config.bad.iterdir() if p.name.endswith(".reason")]
    assert reason.name.split("--", 1)[1].startswith(original)
    return reason.read_text()


# --- names ---------------------------------------------------------------------------------------


def test_a_name_that_grows_past_name_max_with_the_prefix_is_shortened_and_claimed(
    spool: Spool,
) -> None:
    name = "k" * 250 + ".msg"  # 254 bytes: allowed in incoming/, too long once prefixed
    (spool.config.incoming / name).write_bytes(b"<x/>")
    (item,) = spool.claim(10)
    assert len(os.fsencode(item.source_ref)) + len(".recoveries") <= NAME_MAX
    assert item.path.read_bytes() == b"<x/>"
    spool.done(item)
    assert (spool.config.processed / item.source_ref).exists()


def test_a_name_that_is_not_utf8_is_claimed_under_an_escaped_name(spool: Spool) -> None:
    raw_name = b"krav-\xff\xfe-\x01.msg"
    with open(os.fsencode(spool.config.incoming) + b"/" + raw_name, "wb") as fh:
        fh.write(b"<x/>")
    (item,) = spool.claim(10)
    assert item.shown_name == "krav-\\xff\\xfe-\\x01.msg"
    item.source_ref.encode("utf-8")  # storable and loggable: no surrogates left
    assert item.source_ref.endswith("--krav-\\xff\\xfe-\\x01.msg")


def test_a_file_that_vanishes_between_scan_and_lstat_is_forgotten(spool: Spool) -> None:
    for name in ("a.msg", "b.msg"):
        (spool.config.incoming / name).write_bytes(b"<x/>")
    spool.readiness.scanned(spool_module._scan(spool.config.incoming))
    (spool.config.incoming / "a.msg").unlink()
    claimed = spool.claim(10)
    assert [c.original_name for c in claimed] == ["b.msg"]
    assert spool.claim(10) == []


# --- kinds of file -------------------------------------------------------------------------------


def test_symlinks_fifos_and_directories_are_parked_with_a_reason_log_and_count(
    spool: Spool, parked_kinds: list[str], tmp_path: Path
) -> None:
    incoming = spool.config.incoming
    secret = tmp_path / "secret.txt"
    secret.write_text("not for senders")
    (incoming / "link.msg").symlink_to(secret)
    os.mkfifo(incoming / "pipe.msg")  # opening it would block the daemon forever
    (incoming / "folder.msg").mkdir()
    (incoming / "good.msg").write_bytes(b"<x/>")
    with capture_logs() as logs:
        claimed = spool.claim(10)
    assert [c.original_name for c in claimed] == ["good.msg"]
    assert sorted(parked_kinds) == ["directory", "fifo", "symlink"]
    assert os.listdir(incoming) == []
    parked = {e["file"]: e["kind"] for e in logs if e["event"] == "spool_file_parked"}
    assert parked == {"link.msg": "symlink", "pipe.msg": "fifo", "folder.msg": "directory"}
    assert secret.read_text() == "not for senders"  # the link was moved, never followed
    reasons = sorted(p.read_text() for p in spool.config.bad.glob("*.reason"))
    assert all("not a regular file" in r for r in reasons)
    assert spool.parked_count() == 3
    assert spool.requeue_bad() == []  # only regular files go back


def test_an_abandoned_dot_file_is_parked_but_a_fresh_one_is_left_alone(
    tmp_path: Path, parked_kinds: list[str]
) -> None:
    spool = make_spool(tmp_path, on_parked=parked_kinds.append, abandoned_after=60.0)
    incoming = spool.config.incoming
    (incoming / ".fresh.msg").write_bytes(b"half")
    old = incoming / ".old.msg.tmp"
    old.write_bytes(b"left behind")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert spool.claim(10) == []
    assert parked_kinds == ["abandoned"]
    assert os.listdir(incoming) == [".fresh.msg"]
    assert "temporary file" in reason_of(spool, ".old.msg.tmp")


def test_a_file_that_cannot_be_moved_is_logged_once_and_never_stops_the_others(
    spool: Spool, parked_kinds: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("stuck.msg", "fine.msg"):
        (spool.config.incoming / name).write_bytes(b"<x/>")
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self.name == "stuck.msg":
            raise OSError(36, "File name too long")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with capture_logs() as logs:
        first = spool.claim(10)
        second = spool.claim(10)
    assert [c.original_name for c in first] == ["fine.msg"]
    assert second == []
    assert [e["event"] for e in logs].count("spool_file_stuck") == 1
    assert parked_kinds == ["unclaimable"]


# --- readiness -----------------------------------------------------------------------------------


def test_claiming_does_not_rescan_incoming_while_files_are_ready(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(50):
        (spool.config.incoming / f"{i:03}.msg").write_bytes(b"<x/>")
    scans: list[int] = []
    real_scan = spool_module._scan
    monkeypatch.setattr(
        spool_module, "_scan", lambda d: scans.append(1) or real_scan(d)  # type: ignore[func-returns-value]
    )
    claimed = [item for _ in range(5) for item in spool.claim(10)]
    assert [c.original_name for c in claimed] == [f"{i:03}.msg" for i in range(50)]
    assert len(scans) == 1


async def run_inbox(spool: Spool, until: float) -> Recorder:
    """Run a SpoolInbox with a recording intake for ``until`` seconds."""
    recorder = Recorder()
    stop = asyncio.Event()
    task = asyncio.create_task(SpoolInbox(spool, recorder).run(stop))
    await asyncio.sleep(until)
    stop.set()
    await asyncio.wait_for(task, 5)
    return recorder


async def test_a_file_renamed_in_is_taken_at_once_without_polling(tmp_path: Path) -> None:
    spool = make_spool(tmp_path, settle=30.0)  # a long settle: only the rename can make it ready
    spool.config = dataclasses.replace(spool.config, poll_interval=60.0)
    recorder = Recorder()
    stop = asyncio.Event()
    task = asyncio.create_task(SpoolInbox(spool, recorder).run(stop))
    await asyncio.sleep(0.3)
    tmp = spool.config.incoming / ".claim.msg.tmp"
    tmp.write_bytes(b"<whole/>")
    tmp.rename(spool.config.incoming / "claim.msg")
    for _ in range(100):
        if recorder.seen:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [(raw, name) for raw, _, name in recorder.seen] == [(b"<whole/>", "claim.msg")]


async def test_a_slowly_written_file_is_taken_whole_never_half_written(tmp_path: Path) -> None:
    spool = make_spool(tmp_path, settle=0.2)
    recorder = Recorder()
    stop = asyncio.Event()
    task = asyncio.create_task(SpoolInbox(spool, recorder).run(stop))
    await asyncio.sleep(0.2)
    with (spool.config.incoming / "slow.msg").open("wb") as fh:
        for chunk in (b"<first/>", b"<second/>", b"<third/>"):
            fh.write(chunk)
            fh.flush()
            await asyncio.sleep(0.6)  # pauses three times longer than the settle time
            assert recorder.seen == []  # held open: never taken
    for _ in range(100):
        if recorder.seen:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [raw for raw, _, _ in recorder.seen] == [b"<first/><second/><third/>"]


# --- one spool, one daemon (unless shared) -------------------------------------------------------


def test_a_second_daemon_on_the_same_spool_is_refused_clearly(tmp_path: Path) -> None:
    first = make_spool(tmp_path)
    first.lock()
    try:
        with pytest.raises(ConfigurationError, match=r"in use by another gateway daemon \(pid"):
            make_spool(tmp_path).lock()
        with pytest.raises(ConfigurationError, match=r"without spool\.shared"):
            make_spool(tmp_path, shared=True).lock()
    finally:
        first.unlock()
    second = make_spool(tmp_path)
    second.lock()  # the first is gone: free again
    second.unlock()


def test_shared_instances_claim_each_file_once_and_adopt_what_a_dead_one_left(
    tmp_path: Path,
) -> None:
    a, b = make_spool(tmp_path, shared=True), make_spool(tmp_path, shared=True)
    a.lock()
    b.lock()
    try:
        for i in range(20):
            (a.config.incoming / f"{i:02}.msg").write_bytes(b"%d" % i)
        got_a, got_b = a.claim(7), b.claim(100)
        names = sorted(c.original_name for c in got_a + got_b)
        assert names == [f"{i:02}.msg" for i in range(20)]
        assert {c.path.parent for c in got_a} == {a.work} != {b.work}
        for item in got_b:
            b.done(item)
        assert b.recover() == ([], [])  # a is alive: its files are not touched
        assert all(c.path.exists() for c in got_a)
        a.unlock()  # a dies with 7 files claimed (its lock goes with it)
        again, _ = b.recover()
        assert sorted(c.original_name for c in again) == sorted(c.original_name for c in got_a)
        assert all(c.path.parent == b.work for c in again)
        assert sorted(p.name for p in b.config.work.iterdir()) == [b.work.name]
        for item in again:
            b.done(item)
    finally:
        b.unlock()
    assert list(b.config.work.iterdir()) == []  # each instance's directory goes with it


# --- size ----------------------------------------------------------------------------------------


def test_an_oversized_file_is_read_only_as_a_bounded_prefix_with_the_whole_hash(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.xml"
    data = b"<a>" + b"x" * (3 * 1024 * 1024) + b"</a>"
    path.write_bytes(data)
    raw = read_bounded(path, max_bytes=1024 * 1024)
    assert isinstance(raw, Truncated)
    assert len(raw) == EVIDENCE_BYTES
    assert raw.size == len(data)
    assert raw.sha256 == hashlib.sha256(data).hexdigest()
    assert read_bounded(path, max_bytes=len(data)) == data
