"""Readiness: when a file in incoming/ may be taken, from inotify events or scans (no disk)."""

from __future__ import annotations

from gateway.inbox.spool_ready import Readiness, Seen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def readiness(settle: float = 0.5, abandoned: float = 60.0) -> tuple[Readiness, Clock]:
    clock = Clock()
    return Readiness(settle, abandoned, clock=clock, wall=clock), clock


def taken(r: Readiness) -> list[str]:
    names = []
    while (name := r.take()) is not None:
        names.append(name)
    return names


def test_a_file_renamed_in_is_ready_at_once_and_counted() -> None:
    r, _ = readiness()
    r.arrived("a.msg")
    r.arrived(".b.msg.tmp")
    assert r.waiting() == 1 and len(r) == 2
    assert taken(r) == ["a.msg"]


def test_a_file_written_in_place_waits_for_its_last_close_and_the_settle_time() -> None:
    r, clock = readiness()
    r.created("a.msg")
    r.opened("a.msg")
    r.modified("a.msg")
    clock.now += 100  # held open for a long time: never ready
    assert taken(r) == []
    r.closed("a.msg", wrote=True)
    clock.now += 0.4
    assert taken(r) == []
    r.modified("a.msg")  # touched again (by a writer opened before we watched)
    clock.now += 0.4
    assert taken(r) == []
    clock.now += 0.2
    assert taken(r) == ["a.msg"]


def test_a_reader_delays_a_ready_file_only_while_it_has_it_open() -> None:
    r, _ = readiness()
    r.arrived("a.msg")
    r.opened("a.msg")
    assert taken(r) == []
    r.closed("a.msg", wrote=False)
    assert taken(r) == ["a.msg"]


def test_a_temporary_name_is_handed_out_only_when_abandoned() -> None:
    r, clock = readiness(abandoned=60)
    r.created(".x.tmp")
    r.opened(".x.tmp")
    r.closed(".x.tmp", wrote=True)
    clock.now += 59
    assert taken(r) == []
    clock.now += 2
    assert taken(r) == [".x.tmp"]
    assert r.is_temporary(".x.tmp")


def test_scanned_files_are_ready_once_quiet_and_settle_again_when_they_change() -> None:
    r, clock = readiness(settle=1.0)
    r.scanned(
        [Seen("old.msg", 10, int((clock.now - 5) * 1e9)), Seen("new.msg", 10, int(clock.now * 1e9))]
    )
    assert taken(r) == ["old.msg"]
    r.scanned([Seen("new.msg", 20, int(clock.now * 1e9))])  # grew: still being written
    clock.now += 0.5
    assert taken(r) == []
    clock.now += 0.6
    assert taken(r) == ["new.msg"]
    assert r.recheck("new.msg", 30, int(clock.now * 1e9)) is False  # changed since: wait again
    assert r.waiting() == 1


def test_vanished_names_are_forgotten_by_a_scan_and_by_events() -> None:
    r, _ = readiness(settle=0)
    r.scanned([Seen("a.msg", 1, 0), Seen("b.msg", 1, 0)])
    r.gone("a.msg")
    r.scanned([])
    assert r.waiting() == 0 and taken(r) == []
