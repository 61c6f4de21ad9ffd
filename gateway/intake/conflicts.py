"""What a message's processing read of the store, what each commit changed, and whether the two
overlap: the check that makes concurrent processing as correct as one message at a time.

Workers process messages side by side, each reading the store as of the moment it began (a
snapshot: every message committed before, none after). The rules read history (a patient's
bills in a period, a practitioner's, a bill by its Guid) and the duplicate checks read ids. Two
messages for the same patient processed at once would each miss the other: both could be
approved as non-duplicates. So every read is recorded (``Reads``), every commit's changes are
remembered for a while (``CommitLog``), and a message whose reads a later commit changed is not
committed: it is processed again, now seeing that commit (optimistic concurrency control, as a
database's serializable snapshot isolation does it, on exactly the keys the rules read).

Keys, read and written:

- ``("ebxml", CPAId, MessageId)`` and ``("msghead", sender HER id, MsgId)``: the duplicate
  checks; written by every stored message with such ids.
- ``("guid", sender HER id, Guid)``: ``approved_bill``; written by every approved bill
  (an original, or a credit consuming one).
- ``("practitioner", id)`` and ``("patient", id)`` over ``[start, end)`` of DatoTid: the window
  and count queries; written at the DatoTid of every approved original, and of the original an
  approved credit consumed (it leaves the history).

A read conflicts with a write of a message committed after the reader's snapshot (a larger
received id than the newest it saw). Bills that are not approved change no history and write
nothing: a rejected bill never makes another message wait.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from gateway.store.intake import IntakeRows, Touched, Written

__all__ = ["Changes", "CommitLog", "ExactKey", "RangeKey", "Reads", "changes_of"]

#: ``(kind, *values)`` read or written exactly: ebxml, msghead, guid.
ExactKey = tuple[str, str, str]
#: ``(kind, id, start, end)`` read over a DatoTid window: practitioner, patient.
RangeKey = tuple[str, str, datetime, datetime]


@dataclass(slots=True)
class Reads:
    """What one message's processing read: filled by the recording store views."""

    exact: set[ExactKey] = field(default_factory=set)
    ranges: set[RangeKey] = field(default_factory=set)

    def clear(self) -> None:
        self.exact.clear()
        self.ranges.clear()

    def frozen(self) -> tuple[frozenset[ExactKey], frozenset[RangeKey]]:
        return frozenset(self.exact), frozenset(self.ranges)


@dataclass(frozen=True, slots=True)
class Changes:
    """What one commit changed, as keys: exact keys, and (kind, id) -> DatoTids."""

    exact: tuple[ExactKey, ...]
    points: tuple[tuple[str, str, datetime], ...]


def changes_of(rows: IntakeRows, written: Written) -> Changes:
    """The keys a committed intake changed (see the module)."""
    exact: list[ExactKey] = []
    points: list[tuple[str, str, datetime]] = []
    if rows.ebxml_id is not None:
        exact.append(("ebxml", *rows.ebxml_id))
    if rows.msghead_id is not None:
        exact.append(("msghead", *rows.msghead_id))
    for bill in rows.bills:
        if not bill.approved:
            continue
        exact.append(("guid", bill.touched.sender_her, bill.touched.guid))
        if not bill.credit:
            points += _points(bill.touched)
    for original in written.credited:
        points += _points(original)
    return Changes(tuple(exact), tuple(points))


def _points(bill: Touched) -> list[tuple[str, str, datetime]]:
    return [
        ("practitioner", bill.practitioner_id, bill.dato_tid),
        ("patient", bill.patient_id, bill.dato_tid),
    ]


class CommitLog:
    """The changes of recent commits, by received id, kept for ``window`` seconds.

    A message can only be in flight for a bounded time (its budget), so older commits were
    visible to every message still to be checked; a message that began before the oldest
    commit kept counts as conflicting (processed again rather than trusted)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._exact: dict[ExactKey, int] = {}
        self._points: dict[tuple[str, str], list[tuple[int, datetime]]] = {}
        self._order: deque[tuple[float, int, Changes]] = deque()
        #: Commits up to this received id have been forgotten.
        self._forgotten_up_to = 0

    def add(self, received_id: int, changes: Changes, *, now: float | None = None) -> None:
        """Remember what the commit of ``received_id`` changed."""
        for key in changes.exact:
            self._exact[key] = max(received_id, self._exact.get(key, 0))
        for kind, ident, at in changes.points:
            self._points.setdefault((kind, ident), []).append((received_id, at))
        self._order.append((time.monotonic() if now is None else now, received_id, changes))

    def conflicts(
        self,
        snapshot: int,
        exact: Iterable[ExactKey],
        ranges: Iterable[RangeKey],
    ) -> bool:
        """True if a commit after ``snapshot`` (the newest received id the reads saw) changed
        anything that was read."""
        if snapshot < self._forgotten_up_to:
            return True  # it began before commits we no longer know: do not trust it
        for key in exact:
            if self._exact.get(key, 0) > snapshot:
                return True
        for kind, ident, start, end in ranges:
            for received_id, at in self._points.get((kind, ident), ()):
                if received_id > snapshot and start <= at < end:
                    return True
        return False

    def forget_older(self, *, now: float | None = None) -> None:
        """Drop what commits older than the window changed."""
        limit = (time.monotonic() if now is None else now) - self.window
        while self._order and self._order[0][0] < limit:
            _, received_id, changes = self._order.popleft()
            self._forgotten_up_to = max(self._forgotten_up_to, received_id)
            for key in changes.exact:
                if self._exact.get(key) == received_id:
                    del self._exact[key]
            for kind, ident, _ in changes.points:
                kept = [p for p in self._points.get((kind, ident), ()) if p[0] > received_id]
                if kept:
                    self._points[(kind, ident)] = kept
                else:
                    self._points.pop((kind, ident), None)
