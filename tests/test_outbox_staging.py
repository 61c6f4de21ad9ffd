"""The file outbox's replies staged around a commit: durable before it, visible after it, and
finished at the next start when a crash fell in between."""

from __future__ import annotations

from pathlib import Path

from gateway.outbox.files import FileOutbox
from gateway.records import ReplyRecord
from gateway.store import Store
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
    outbox.discard(outbox.stage([reply(1)]))
    assert list((tmp_path / "outbox").iterdir()) == []
    store.close()
