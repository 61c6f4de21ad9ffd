"""The file outbox's replies staged around a commit: durable before it, visible after it, and
finished at the next start when a crash fell in between."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.intake.writer import GroupWriter
from gateway.outbox.files import FileOutbox
from gateway.records import Outcome, ReceivedRecord, ReplyRecord
from gateway.store import Store
from gateway.store.intake import intake_rows
from gateway.store.outbox import record_delivery_in
from gateway.store.replies import write_replies


def reply(n: int) -> ReplyRecord:
    return ReplyRecord("apprec", "x@y", f"claim-{n}.apprec.eml", f"body {n}".encode())


def commit_delivered(store: Store, replies: list[ReplyRecord]) -> None:
    with store.intake.transaction("test") as tx:
        record_delivery_in(tx, write_replies(tx, replies, received_id=None))


def test_staged_files_appear_only_when_published(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.sqlite3")
    outbox = FileOutbox(store, tmp_path / "outbox")
    staged = outbox.stage([reply(1), reply(2)])
    assert staged is not None
    assert (
        sorted(p.name for p in (tmp_path / "outbox").iterdir() if not p.name.startswith(".")) == []
    )
    commit_delivered(store, [reply(1), reply(2)])
    outbox.publish(staged)
    assert (tmp_path / "outbox" / "claim-1.apprec.eml").read_bytes() == b"body 1"
    assert [p.name for p in (tmp_path / "outbox").iterdir() if p.name.startswith(".")] == []
    store.close()


def test_a_crash_between_commit_and_publish_is_finished_at_the_next_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.sqlite3")
    outbox = FileOutbox(store, tmp_path / "outbox")
    outbox.stage([reply(1), reply(2)])
    commit_delivered(store, [reply(1), reply(2)])  # then the crash: never published
    outbox.stage([reply(3)])  # staged, but its commit never happened
    FileOutbox(store, tmp_path / "outbox")  # the next start
    names = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert names == ["claim-1.apprec.eml", "claim-2.apprec.eml"], "committed ones finished"
    assert (tmp_path / "outbox" / "claim-2.apprec.eml").read_bytes() == b"body 2"
    store.close()


def test_a_discarded_stage_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.sqlite3")
    outbox = FileOutbox(store, tmp_path / "outbox")
    staged = outbox.stage([reply(1)])
    assert staged is not None
    outbox.discard(staged)
    assert list((tmp_path / "outbox").iterdir()) == []
    store.close()


class FullDisk:
    """Every file write refused with ENOSPC while ``full`` (as a full tmpfs refuses them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = True
        real = os.write

        def write(fd: int, data: bytes | memoryview) -> int:
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, data)

        monkeypatch.setattr(os, "write", write)


def test_a_batch_commits_on_a_full_disk_with_its_replies_pending_until_there_is_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "gateway.sqlite3")
    outbox = FileOutbox(store, tmp_path / "outbox")
    writer = GroupWriter(store, outbox, batch_size=10, window=60, files=outbox)
    disk = FullDisk(monkeypatch)
    try:
        received = ReceivedRecord(
            datetime(2026, 12, 3, tzinfo=UTC), "spool", "m1", b"raw", "0" * 64, Outcome.ACCEPTED
        )
        rows = intake_rows(received, None, None, (reply(1),))
        writer.submit(rows, None).result(timeout=30)  # committed: the disk is no reason to fail
        assert [r.filename for r in store.outbox.pending_replies()] == ["claim-1.apprec.eml"]
        assert list((tmp_path / "outbox").iterdir()) == [], "no temp file left on a full disk"
        assert not outbox.health().ok and "No space left" in outbox.health().detail
        disk.full = False
        outbox.notify()  # what the outbox service does on its next try
        assert (tmp_path / "outbox" / "claim-1.apprec.eml").read_bytes() == b"body 1"
        assert store.outbox.pending_replies() == [] and outbox.health().ok
    finally:
        writer.close()
        store.close()
