"""The file-drop spool: claiming, finishing, recovery after crashes, parking."""

from __future__ import annotations

from pathlib import Path

from gateway.config import SpoolConfig
from gateway.inbox.spool import Spool


def make_spool(tmp_path: Path, max_recoveries: int = 3) -> Spool:
    return Spool(
        SpoolConfig(
            directory=tmp_path / "spool",
            poll_interval=0.1,
            max_recoveries=max_recoveries,
            settle_seconds=0.0,
        )
    )


def drop(spool: Spool, name: str, data: bytes = b"<x/>") -> Path:
    path = spool.config.incoming / name
    path.write_bytes(data)
    return path


def test_claim_moves_files_to_work_with_unique_names_and_skips_temp_files(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    drop(spool, "a.msg")
    drop(spool, "b.xml")
    drop(spool, ".hidden.msg")
    drop(spool, "c.msg.tmp")
    claimed = spool.claim(10)
    assert sorted(c.original_name for c in claimed) == ["a.msg", "b.xml"]
    assert all(c.path.parent == spool.config.work for c in claimed)
    assert len({c.source_ref for c in claimed}) == 2
    assert sorted(p.name for p in spool.config.incoming.iterdir()) == [".hidden.msg", "c.msg.tmp"]


def test_claim_respects_the_limit_and_settle_time(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    for i in range(5):
        drop(spool, f"{i}.msg")
    assert len(spool.claim(3)) == 3
    assert spool.incoming_count() == 2
    spool.settle_seconds = 3600
    assert spool.claim(10) == []


def test_done_moves_to_processed(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    drop(spool, "a.msg", b"payload")
    (item,) = spool.claim(1)
    spool.done(item)
    assert (spool.config.processed / item.source_ref).read_bytes() == b"payload"
    assert list(spool.config.work.iterdir()) == []


def test_recovery_counts_and_parks_after_max(tmp_path: Path) -> None:
    spool = make_spool(tmp_path, max_recoveries=2)
    drop(spool, "poison.msg", b"boom")
    (item,) = spool.claim(1)
    for expected in (1, 2):
        again, parked = spool.recover()
        assert [(c.source_ref, c.recoveries) for c in again] == [(item.source_ref, expected)]
        assert parked == []
    again, parked = spool.recover()
    assert again == []
    assert [p.name for p in parked] == [item.source_ref]
    assert (spool.config.bad / item.source_ref).read_bytes() == b"boom"
    reason = (spool.config.bad / (item.source_ref + ".reason")).read_text()
    assert "recovered 2 times" in reason
    assert list(spool.config.work.iterdir()) == []


def test_release_and_requeue_put_files_back_unchanged(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    drop(spool, "a.msg", b"A")
    drop(spool, "b.msg", b"B")
    first, second = spool.claim(2)
    spool.release(first)
    spool.park(second, "test")
    assert (spool.config.incoming / first.original_name).read_bytes() in (b"A", b"B")
    moved = spool.requeue_bad()
    assert [p.name for p in moved] == [second.original_name]
    assert sorted(p.read_bytes() for p in spool.config.incoming.iterdir()) == [b"A", b"B"]
    assert list(spool.config.bad.iterdir()) == []


def test_recovery_forgets_counters_a_killed_run_left_behind(tmp_path: Path) -> None:
    spool = make_spool(tmp_path)
    drop(spool, "a.msg", b"payload")
    (item,) = spool.claim(1)
    spool.recover()  # its counter: 1
    # Killed after the move to processed/, before the counter went; and mid-write of another.
    item.path.replace(spool.config.processed / item.path.name)
    (spool.config.work / f".{item.path.name}.recoveries.0123abcd.tmp").write_bytes(b"2")
    again, parked = spool.recover()
    assert again == [] and parked == []
    assert list(spool.config.work.iterdir()) == []
