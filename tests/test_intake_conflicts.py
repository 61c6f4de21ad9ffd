"""The conflict check of concurrent processing: what a commit changes, what a read sees, and
the writer's verdicts (in its own thread, against a real store)."""

from __future__ import annotations

import dataclasses
import random
from concurrent.futures import Future
from datetime import datetime, timedelta
from pathlib import Path

from gateway.intake.conflicts import Changes, CommitLog, changes_of
from gateway.intake.jobs import Committed, Conflict, Prepared, Stored
from gateway.intake.writer import GroupWriter, _Item
from gateway.outbox.files import FileOutbox
from gateway.records import MessageRecord, Outcome, ReceivedRecord
from gateway.rules.base import Finding, Severity
from gateway.rules.engine import BillDecision, BillStatus, Evaluation
from gateway.store import Store
from gateway.store.intake import IntakeRows, Touched, Written, intake_rows
from gateway.testing.claims import make_bill

T = datetime(2026, 10, 5, 9, 0)
DAY = timedelta(days=1)


def test_a_commit_changes_the_keys_of_its_ids_and_approved_bills() -> None:
    rows = rows_with(("A", True, False), ("B", False, False), ("C", True, True))
    credited = Touched("8141253", "C", "HPR9", "01010100000", T - DAY)
    changes = changes_of(rows, Written(7, (), (credited,)))
    assert set(changes.exact) == {
        ("ebxml", "cpa", "mid"),
        ("msghead", "8141253", "msg"),
        ("guid", "8141253", "A"),
        ("guid", "8141253", "C"),  # the credit: approved_bill changes
    }
    points = set(changes.points)
    assert ("practitioner", "HPR1", T) in points and ("patient", "P-A", T) in points
    assert not any(ident == "P-B" for _, ident, _ in points), "a rejected bill changes nothing"
    assert ("patient", "01010100000", T - DAY) in points, "the credited original leaves history"


def test_a_read_conflicts_only_with_a_later_commit_that_changed_it() -> None:
    log = CommitLog(window=60)
    log.add(10, Changes((("guid", "s", "g"),), (("patient", "p", T),)), now=0)
    window = ("patient", "p", T - DAY, T + DAY)
    assert log.conflicts(9, [("guid", "s", "g")], [])
    assert not log.conflicts(10, [("guid", "s", "g")], []), "seen in its snapshot"
    assert log.conflicts(9, [], [window])
    assert not log.conflicts(9, [], [("patient", "p", T + DAY, T + 2 * DAY)]), "other dates"
    assert not log.conflicts(9, [], [("patient", "q", T - DAY, T + DAY)]), "another patient"
    assert not log.conflicts(9, [("guid", "s", "other")], [])


def test_commits_older_than_the_window_are_forgotten_and_older_snapshots_distrusted() -> None:
    log = CommitLog(window=60)
    log.add(10, Changes((("guid", "s", "g"),), ()), now=0)
    log.add(11, Changes((("guid", "s", "h"),), ()), now=50)
    log.forget_older(now=70)
    assert not log.conflicts(10, [("guid", "s", "g")], [])
    assert log.conflicts(10, [("guid", "s", "h")], [])
    assert log.conflicts(9, [], []), "began before what is forgotten: processed again"


def test_the_writer_commits_a_batch_and_sends_back_what_conflicts(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.sqlite3")
    writer = GroupWriter(store, FileOutbox(store, tmp_path / "outbox"), batch_size=10, window=60)
    try:
        first = prepared("m1", "G1", snapshot=0)
        assert isinstance(writer.submit(first.rows, first).result(timeout=30), Stored)
        # Read before m1 was committed, and m1 changed what it read: processed again.
        stale = prepared("m2", "G1", snapshot=0)
        assert isinstance(writer.submit(stale.rows, stale).result(timeout=30), Conflict)
        # Read after m1 was committed (and so approving another bill): committed.
        fresh = prepared("m3", "G2", snapshot=1, read="G1")
        assert isinstance(writer.submit(fresh.rows, fresh).result(timeout=30), Stored)
        # A source_ref committed already (a crash after its commit).
        again = prepared("m3", "G9", snapshot=5)
        assert isinstance(writer.submit(again.rows, again).result(timeout=30), Committed)
    finally:
        writer.close()
        store.close()


def test_two_conflicting_messages_in_one_batch_are_not_both_committed(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.sqlite3")
    writer = GroupWriter.__new__(GroupWriter)  # the batch logic without the thread
    writer.store, writer.log, writer.files = store, CommitLog(60), None
    try:
        a, b, c = (
            prepared("a", "G", snapshot=0),
            prepared("b", "G", snapshot=0),
            prepared("c", "H", snapshot=0),
        )
        verdicts, _ = writer._commit([_Item(p.rows, p, Future()) for p in (a, b, c)])
        assert [type(v) for v in verdicts] == [Stored, Conflict, Stored]
    finally:
        store.close()


# --- building blocks ---------------------------------------------------------------------------


def decision(index: int, guid: str, approved: bool, credit: bool) -> BillDecision:
    bill = make_bill(
        rng=random.Random(index), practitioner="lege", dato_tid=T, regning_nr=str(100 + index)
    )
    bill = dataclasses.replace(
        bill,
        guid=guid,
        kreditering=credit,
        patient=dataclasses.replace(bill.patient, id=f"P-{guid}"),
    )
    status = BillStatus.GODKJENT if approved else BillStatus.AVVIST
    findings: tuple[Finding, ...] = ()
    if not approved:
        findings = (
            Finding("DUP-001", 1, "9001", "Duplikat", Severity.REJECT_BILL, index, "1", {}),
        )
    return BillDecision(index, bill, status, bill.behandling.sum_refusjon, findings)


def rows_with(*bills: tuple[str, bool, bool]) -> IntakeRows:
    evaluation = Evaluation(
        "v1", (), tuple(decision(i, g, a, c) for i, (g, a, c) in enumerate(bills))
    )
    received = ReceivedRecord(T, "spool", "r", b"raw", "0" * 64, Outcome.ACCEPTED)
    message = MessageRecord(
        cpa_id="cpa", ebxml_message_id="mid", msg_id="msg", sender_her="8141253"
    )
    return intake_rows(received, message, evaluation, (), practitioner_id="HPR1")


def prepared(ref: str, guid: str, *, snapshot: int, read: str | None = None) -> Prepared:
    """A message approving bill ``guid``, having read ``read`` (default: ``guid``)."""
    evaluation = Evaluation("v1", (), (decision(0, guid, True, False),))
    received = ReceivedRecord(T, "spool", ref, ref.encode(), "0" * 64, Outcome.ACCEPTED)
    message = MessageRecord(msg_id=f"msg-{ref}", sender_her="8141253")
    rows = intake_rows(received, message, evaluation, (), practitioner_id="HPR1")
    return Prepared(
        rows=rows,
        snapshot=snapshot,
        read_exact=frozenset({("guid", "8141253", read or guid)}),
        read_ranges=frozenset(),
        outcome=Outcome.ACCEPTED,
        apprec_status=1,
        reply_kinds=(),
        detail=None,
        signal=None,
        signal_at=None,
        stages=(),
        seconds=0.0,
    )
