"""The exactly-once payout ledger: what each scheduled run pays, per bill and receiver.

The ledger principle
--------------------
Every bill has a TARGET: what should, in total, have been paid for it by now.

* An effectively approved (``bill_status_effective.status = 'godkjent'``) original bill
  (``kreditering = 0``) that is not held for manual control: its effective ``approved_ore``
  (overrides by case workers included). A bill flagged ``manual`` is held (target 0) until a case
  worker has decided on it (an override of kind ``'override'``); a rebehandling does not release it.
* An original consumed by an approved credit (``credited_by`` set): frozen at what was paid for it
  before the credit. A credited bill can no longer be overridden, and keeping the original's own
  lines as they are makes the reversal a line of its own (on the credit bill) rather than an edit
  of the original's history. An original credited before any payout is thus never paid at all.
* An approved credit bill (``kreditering = 1``): minus what was paid for the original it credited
  (the bill whose ``credited_by`` is the credit's id). Original plus credit then net to 0.
* Everything else (rejected bills, rejected credits): 0.

PAID is the sum of ``payout_lines.amount_ore`` of the bill. A registered paper claim
(``paper_claims``, aggregates only) is owed its refund once: its line goes to
``payout_paper_lines`` in the same run transaction, whose unique ``paper_id`` makes a second
payment impossible; it is held with its payee like a bill. A run pays DELTA = TARGET − PAID for
every bill where it is not 0, grouped per receiver (the bill's ``sender_her``). So a bill is never
paid twice; an override after a payout, or a credit of a paid bill, yields a correcting line in
the next run; and after every run the sum of all lines of a receiver equals the sum of its current
targets (approved minus credited).

Line kinds: ``payment`` — the first line of an original bill; ``correction`` — any later line of
an original (an override changed its target); ``reversal`` — a line of a credit bill.

Exactly once: a run is one transaction that inserts the run row and computes and inserts all
its lines from the state read inside that same transaction. A crash before the commit leaves
nothing; after it, everything. A run key (the scheduled date, e.g. ``2026-11-23``) is unique:
running the same key again returns the recorded run unchanged and pays nothing new. The
transaction takes the ``payout`` lock (``Transaction.serialise``: SQLite's ``BEGIN IMMEDIATE``,
a PostgreSQL advisory lock), so runs of several instances on one database never interleave.

Holds: ``run(..., hold=...)`` lets the caller leave bills out of a run (they stay unpaid and
come up again): ``gateway.payout.payees`` holds every bill of a payee without an account, or
whose net would be negative (carried to the next run). The run's state then moves on as
``gateway.payout.sending`` stores and queues its decisions (``recorded`` → ``enqueued`` →
``done``).

Amounts are integer øre throughout. The ledger keeps its own tables on the claims database,
through the store's engine (``Engine.create_tables``); the claims store's schema is not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gateway.errors import GatewayError
from gateway.store.engine import Engine, Reader, Transaction

LineKind = Literal["payment", "reversal", "correction"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS payout_runs (
    id          INTEGER PRIMARY KEY,
    run_key     TEXT    NOT NULL UNIQUE,       -- the scheduled run, e.g. '2026-11-23'
    created_at  TEXT    NOT NULL,              -- UTC, ISO 8601
    state       TEXT    NOT NULL DEFAULT 'recorded'
);
CREATE TABLE IF NOT EXISTS payout_lines (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES payout_runs(id),
    receiver_her  TEXT    NOT NULL,
    bill_id       INTEGER NOT NULL REFERENCES bills(id),
    kind          TEXT    NOT NULL CHECK (kind IN ('payment', 'reversal', 'correction')),
    amount_ore    INTEGER NOT NULL CHECK (amount_ore <> 0),
    UNIQUE (run_id, bill_id)
);
CREATE INDEX IF NOT EXISTS payout_lines_bill ON payout_lines(bill_id);
-- Paper claims (gateway.paper) are paid like bills, in the same run transaction; the unique
-- paper_id pays each registered submission at most once.
CREATE TABLE IF NOT EXISTS payout_paper_lines (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES payout_runs(id),
    receiver_her  TEXT    NOT NULL,
    paper_id      INTEGER NOT NULL UNIQUE REFERENCES paper_claims(id),
    amount_ore    INTEGER NOT NULL CHECK (amount_ore > 0)
);
CREATE INDEX IF NOT EXISTS payout_lines_run ON payout_lines(run_id, receiver_her);
"""

#: One row per bill: its effective decision, the original a credit consumed, what was paid.
_BILLS_SQL = """
SELECT b.id, b.sender_her, b.kreditering, b.credited_by, b.manual,
       e.status, e.approved_ore, e.override_kind,
       (SELECT o.id FROM bills o WHERE o.credited_by = b.id) AS original_id,
       COALESCE((SELECT SUM(p.amount_ore) FROM payout_lines p WHERE p.bill_id = b.id), 0)
           AS paid,
       b.practitioner_type
FROM bills b
JOIN bill_status_effective e ON e.bill_id = b.id
ORDER BY b.id
"""


class PayoutError(GatewayError):
    """A payout run could not be recorded."""


@dataclass(frozen=True)
class PlannedLine:
    """One line a run pays (or would pay): ``amount_ore`` = target − paid, never 0."""

    receiver_her: str
    bill_id: int
    kind: LineKind
    amount_ore: int
    target_ore: int
    paid_ore: int
    practitioner_type: str | None = None  # 'lab' bills may be paid to the institution's owner
    paper_id: int | None = None  # a paper claim's line (bill_id is then 0)

    @property
    def key(self) -> LineKey:
        """What the line pays for: ("bill", id) or ("paper", id)."""
        return ("paper", self.paper_id) if self.paper_id is not None else ("bill", self.bill_id)


LineKey = tuple[str, int]

#: Given what a run would pay, the keys of the lines to hold back (left unpaid for a later run).
Hold = Callable[[Sequence[PlannedLine]], Collection[LineKey]]

#: Paper claims not paid yet: the whole refund is owed once (no credits or overrides on paper).
_PAPER_SQL = """
SELECT p.id, p.practice_her, p.refund_ore, p.practice_type FROM paper_claims p
WHERE p.refund_ore > 0
  AND NOT EXISTS (SELECT 1 FROM payout_paper_lines x WHERE x.paper_id = p.id)
ORDER BY p.id
"""


@dataclass(frozen=True)
class RunResult:
    run_id: int
    run_key: str
    created: bool  # False: the run key was already recorded; nothing new was paid
    per_receiver: dict[str, int]  # receiver HER id -> øre (net), only receivers with lines
    held: tuple[PlannedLine, ...] = ()  # lines the hold kept back (only when created)


@dataclass(frozen=True)
class RunRecord:
    run_id: int
    run_key: str
    created_at: str
    state: str
    lines: int
    total_ore: int


@dataclass(frozen=True)
class LineRecord:
    line_id: int
    run_id: int
    receiver_her: str
    bill_id: int
    kind: LineKind
    amount_ore: int


#: The lock every transaction that decides what is paid takes (``Transaction.serialise``).
PAYOUT_LOCK = "payout"


def payout_transaction(db: Engine, failure: str) -> AbstractContextManager[Transaction]:
    """A transaction on the ledger's tables that no other payout transaction interleaves with,
    on any instance: ``with payout_transaction(db, "...") as tx: ...``."""
    db.create_tables(SCHEMA)
    return _serialised(db, failure)


@contextmanager
def _serialised(db: Engine, failure: str) -> Iterator[Transaction]:
    with db.transaction(failure) as tx:
        tx.serialise(PAYOUT_LOCK)
        yield tx


def create_tables(db: Engine) -> None:
    """Create the ledger's tables if they are missing, for a reader of them (the console)
    that may come before any run."""
    db.create_tables(SCHEMA)


# --- the ledger --------------------------------------------------------------------------------


def bill_target(
    *,
    kreditering: bool,
    credited: bool,
    manual: bool,
    status: str,
    approved_ore: int,
    override_kind: str | None,
    paid: int,
    original_paid: int | None,
) -> int:
    """A bill's TARGET (see the module docstring): what should in total have been paid for it
    by now. The one rule, for the ledger's runs and for whoever shows a bill's payout status
    (the web console and the claim status API)."""
    if kreditering:
        if status == "godkjent" and original_paid is not None:
            return -original_paid
        return 0
    if credited:
        return paid
    if status != "godkjent":
        return 0
    if manual and override_kind != "override":
        return 0
    return approved_ore


def _compute(db: Reader) -> list[PlannedLine]:
    rows = db.rows(_BILLS_SQL)
    paid_by_id = {int(r[0]): int(r[9]) for r in rows}
    lines: list[PlannedLine] = []
    for r in rows:
        bill_id, receiver, kreditering = int(r[0]), str(r[1]), bool(r[2])
        credited, manual = r[3] is not None, bool(r[4])
        original_id = None if r[8] is None else int(r[8])
        paid = paid_by_id[bill_id]
        target = bill_target(
            kreditering=kreditering,
            credited=credited,
            manual=manual,
            status=str(r[5]),
            approved_ore=int(r[6]),
            override_kind=None if r[7] is None else str(r[7]),
            paid=paid,
            original_paid=None if original_id is None else paid_by_id.get(original_id, 0),
        )
        delta = target - paid
        if delta == 0:
            continue
        kind: LineKind
        if kreditering:
            kind = "reversal"
        elif _has_lines(db, bill_id):
            kind = "correction"
        else:
            kind = "payment"
        practitioner_type = None if r[10] is None else str(r[10])
        lines.append(PlannedLine(receiver, bill_id, kind, delta, target, paid, practitioner_type))
    for paper_id, her, refund, ptype in db.rows(_PAPER_SQL):
        lines.append(
            PlannedLine(str(her), 0, "payment", int(refund), int(refund), 0, ptype, int(paper_id))
        )
    return lines


def _has_lines(db: Reader, bill_id: int) -> bool:
    return db.one("SELECT 1 FROM payout_lines WHERE bill_id = ? LIMIT 1", (bill_id,)) is not None


def _insert_lines(db: Transaction, run_id: int, lines: list[PlannedLine]) -> None:
    db.execute_many(
        "INSERT INTO payout_lines(run_id, receiver_her, bill_id, kind, amount_ore) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (run_id, x.receiver_her, x.bill_id, x.kind, x.amount_ore)
            for x in lines
            if x.paper_id is None
        ],
    )
    db.execute_many(
        "INSERT INTO payout_paper_lines(run_id, receiver_her, paper_id, amount_ore) "
        "VALUES (?, ?, ?, ?)",
        [(run_id, x.receiver_her, x.paper_id, x.amount_ore) for x in lines if x.paper_id],
    )


def _per_receiver(db: Reader, run_id: int) -> dict[str, int]:
    rows = db.rows(
        "SELECT receiver_her, SUM(amount_ore) FROM (SELECT receiver_her, amount_ore "
        "FROM payout_lines WHERE run_id = ? UNION ALL SELECT receiver_her, amount_ore "
        "FROM payout_paper_lines WHERE run_id = ?) AS l GROUP BY receiver_her "
        "ORDER BY receiver_her",
        (run_id, run_id),
    )
    return {str(her): int(total) for her, total in rows}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# --- public API --------------------------------------------------------------------------------


def plan(db: Engine) -> list[PlannedLine]:
    """What the next run would pay, bill by bill (ordered by bill id). Records nothing."""
    with payout_transaction(db, "could not plan a payout run") as tx:
        # Read inside a transaction, after any run in progress; nothing is written.
        return _compute(tx)


def run(db: Engine, run_key: str, *, hold: Hold | None = None) -> RunResult:
    """Record the run ``run_key`` and all its lines in one transaction, or, if a run with this
    key exists, return it unchanged (nothing new is paid).

    ``hold`` sees the lines computed inside the transaction and names bills to leave out: they
    stay unpaid (target − paid unchanged) and come up again in the next run."""
    if not run_key.strip():
        raise PayoutError("a payout run needs a non-empty run key")
    with payout_transaction(db, f"could not record payout run {run_key}") as tx:
        row = tx.one("SELECT id FROM payout_runs WHERE run_key = ?", (run_key,))
        if row is not None:
            run_id = int(row[0])
            return RunResult(run_id, run_key, False, _per_receiver(tx, run_id))
        run_id = tx.insert(
            "INSERT INTO payout_runs(run_key, created_at, state) VALUES (?, ?, 'recorded') "
            "RETURNING id",
            (run_key, _now()),
        )
        lines = _compute(tx)
        held_keys = set(hold(lines)) if hold is not None else set()
        _insert_lines(tx, run_id, [x for x in lines if x.key not in held_keys])
        held = tuple(x for x in lines if x.key in held_keys)
        return RunResult(run_id, run_key, True, _per_receiver(tx, run_id), held)


def runs(db: Engine) -> list[RunRecord]:
    """All recorded runs, oldest first, with their line count and net total."""
    db.create_tables(SCHEMA)
    rows = db.rows(
        "SELECT r.id, r.run_key, r.created_at, r.state, COUNT(l.run_id), "
        "COALESCE(SUM(l.amount_ore), 0) FROM payout_runs r LEFT JOIN "
        "(SELECT run_id, amount_ore FROM payout_lines UNION ALL "
        "SELECT run_id, amount_ore FROM payout_paper_lines) AS l ON l.run_id = r.id "
        "GROUP BY r.id, r.run_key, r.created_at, r.state ORDER BY r.id"
    )
    return [RunRecord(int(a), str(b), str(c), str(d), int(e), int(f)) for a, b, c, d, e, f in rows]


def run_lines(db: Engine, run_id: int) -> list[LineRecord]:
    """The lines of one run, per receiver and bill."""
    db.create_tables(SCHEMA)
    rows = db.rows(
        "SELECT id, run_id, receiver_her, bill_id, kind, amount_ore FROM payout_lines "
        "WHERE run_id = ? ORDER BY receiver_her, bill_id",
        (run_id,),
    )
    return [
        LineRecord(int(a), int(b), str(c), int(d), _kind(e), int(f)) for a, b, c, d, e, f in rows
    ]


def paper_lines(db: Engine, run_id: int) -> list[tuple[str, int, int]]:
    """(receiver HER id, paper claim id, amount in øre) of the paper claims a run paid."""
    db.create_tables(SCHEMA)
    rows = db.rows(
        "SELECT receiver_her, paper_id, amount_ore FROM payout_paper_lines WHERE run_id = ? "
        "ORDER BY receiver_her, paper_id",
        (run_id,),
    )
    return [(str(a), int(b), int(c)) for a, b, c in rows]


def _kind(value: object) -> LineKind:
    if value == "payment":
        return "payment"
    if value == "reversal":
        return "reversal"
    if value == "correction":
        return "correction"
    raise PayoutError(f"unknown payout line kind {value!r}")


#: Run states: recorded (ledger) -> enqueued (decisions stored, outbox rows written) -> done
#: (decision and payment files written). See ``gateway.payout.sending``.
RUN_STATES = ("recorded", "enqueued", "done")


def run_record(db: Engine, run_id: int) -> RunRecord | None:
    """One recorded run, or None."""
    return next((r for r in runs(db) if r.run_id == run_id), None)
