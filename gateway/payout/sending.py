"""Sending a recorded run: store its signed decisions, queue them in the outbox, write files.

A run moves through three states (``payout_runs.state``), each step idempotent:

1. ``recorded`` — ``ledger.run`` committed the run and its lines (nothing sent yet).
2. ``enqueued`` — ONE transaction stores each payee's signed decision in ``payout_decisions``
   (the exact bytes, so a resend is byte-identical whatever changes later: registry, names,
   rule texts) and inserts one outbox row per decision into ``replies`` (kind
   ``payout_decision``, ``received_id`` NULL, state ``pending``, ``ack_state`` ``awaiting``),
   with a fixed file name ``payout-<vedtak id>.eml``, so enqueueing twice is a no-op.
3. ``done`` — the decision copies (``<vedtak id>.xml``) and the run's pain.001 payment file
   are written (atomically; rewriting gives the same bytes).

A crash between any two steps leaves a run in ``recorded`` or ``enqueued``; ``resume`` (run by
the scheduler on start, and by ``gateway payout resend``) finishes every such run. The outbox
in use (files or SMTP) delivers the pending rows; the ebXML MessageId is new per copy sent, the
decision inside never changes.

The ebXML message: Service ``BehandlerKrav`` (type ``string``), Action ``Utbetalingsvedtak``
(the project's own action), From our HER id and role, To the payee's HER id, a new
ConversationId, AckRequested and DuplicateElimination, the envelope signed (a ``cid:`` reference
over the payload); the signed decision is the one payload part (``text/xml``, or gzipped and
CMS-encrypted as the CPA says). With partners configured, a decision goes out only if the
receiver's CPA lists its Service/Action (``gateway.payout.routing``); otherwise it is **held**
(``payout_held``, with the reason) and queued once the CPA allows it, by the next
``process_run`` or ``resend``. Without partners, the CPAId is the payee's practice register
entry's (else ``payout.cpa_id``) and the recipient the payee's ``mail_address`` from the
register, else ``HER:<id>`` for the outbox to resolve.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from gateway.clock import local_naive
from gateway.config import Config
from gateway.files import fsync_dir, write_atomically
from gateway.logs import get_logger
from gateway.partners.registry import PartnerRegistry
from gateway.payout import ledger
from gateway.payout.compose import decisions_for_run, reference_secret
from gateway.payout.config import PayoutConfig
from gateway.payout.decision import Decision, signed_decision_bytes
from gateway.payout.message import ebxml_message
from gateway.payout.pain001 import Payment, PaymentRun, build_pain001
from gateway.payout.recipients import Recipients
from gateway.payout.routing import (
    ACTION,
    SERVICE,
    SERVICE_TYPE,
    DecisionRoute,
    Held,
    route_decision,
)
from gateway.payout.values import HeldDecision, PayoutDeps, RunOutcome, StoredDecision
from gateway.practices.live import PracticeSource
from gateway.records import ReplyRecord
from gateway.security.xmldsig import Signer, load_signer
from gateway.store.engine import Engine, Reader, Transaction
from gateway.store.replies import write_replies

log = get_logger("payout")

KIND = "payout_decision"
__all__ = [
    "ACTION",
    "KIND",
    "SERVICE",
    "SERVICE_TYPE",
    "HeldDecision",
    "PayoutDeps",
    "RunOutcome",
    "StoredDecision",
    "ebxml_message",
    "held_decisions",
    "release_held",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS payout_decisions (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES payout_runs(id),
    vedtak_id     TEXT    NOT NULL UNIQUE,
    receiver_her  TEXT    NOT NULL,            -- the payee
    name          TEXT    NOT NULL,
    account       TEXT,
    kid           TEXT,
    total_ore     INTEGER NOT NULL,
    bills         INTEGER NOT NULL,
    recipient     TEXT    NOT NULL,            -- mail address or 'HER:<id>'
    cpa_id        TEXT    NOT NULL,
    body          BLOB    NOT NULL,            -- the signed utbetalingsvedtak, as sent
    created_at    TEXT    NOT NULL,
    UNIQUE (run_id, receiver_her)
);
-- decisions that may not go out now (the receiver's CPA does not list their Service/Action):
-- stored above, queued once the CPA allows it; the row goes when it is queued
CREATE TABLE IF NOT EXISTS payout_held (
    vedtak_id     TEXT    PRIMARY KEY REFERENCES payout_decisions(vedtak_id),
    reason        TEXT    NOT NULL,
    held_at       TEXT    NOT NULL
);
"""

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


# --- storage --------------------------------------------------------------------------------------


def _transaction(db: Engine, failure: str) -> AbstractContextManager[Transaction]:
    """A payout transaction (``ledger.payout_transaction``) with this module's table present."""
    db.create_tables(ledger.SCHEMA + SCHEMA)
    return ledger.payout_transaction(db, failure)


_DECISION_COLUMNS = (
    "run_id, vedtak_id, receiver_her, name, account, kid, total_ore, bills, recipient, cpa_id, body"
)


def _read_decisions(db: Reader, run_id: int) -> list[StoredDecision]:
    return _read_decisions_where(db, "run_id = ?", (run_id,))


def _read_decisions_where(
    db: Reader, where: str, params: tuple[object, ...]
) -> list[StoredDecision]:
    rows = db.rows(
        f"SELECT {_DECISION_COLUMNS} FROM payout_decisions WHERE {where} "  # noqa: S608
        "ORDER BY receiver_her",
        params,
    )
    return [
        StoredDecision(
            int(r[0]),
            str(r[1]),
            str(r[2]),
            str(r[3]),
            None if r[4] is None else str(r[4]),
            None if r[5] is None else str(r[5]),
            int(r[6]),
            int(r[7]),
            str(r[8]),
            str(r[9]),
            bytes(r[10]),
        )
        for r in rows
    ]


def stored_decisions(db: Engine, run_id: int) -> list[StoredDecision]:
    """The decisions stored for a run (empty until it is enqueued)."""
    db.create_tables(ledger.SCHEMA + SCHEMA)
    return _read_decisions(db, run_id)


def _state(db: Reader, run_id: int) -> tuple[str, str, str]:
    row = db.one("SELECT run_key, state, created_at FROM payout_runs WHERE id = ?", (run_id,))
    if row is None:
        raise ledger.PayoutError(f"payout run {run_id} does not exist")
    return str(row[0]), str(row[1]), str(row[2])


# --- the steps ------------------------------------------------------------------------------------


def enqueue_run(db: Engine, run_id: int, deps: PayoutDeps) -> tuple[list[StoredDecision], int]:
    """Step 2: store the run's signed decisions and queue them, in one transaction.

    Returns the stored decisions and how many outbox rows were inserted now. A run already
    enqueued is returned as it is (nothing new is queued)."""
    with _transaction(db, f"could not enqueue payout run {run_id}") as tx:
        run_key, state, created_at = _state(tx, run_id)
        if state != "recorded":
            return _read_decisions(tx, run_id), 0
        existing = {d.receiver_her for d in _read_decisions(tx, run_id)}
        now = deps.now()
        decisions = decisions_for_run(
            db,
            run_id,
            payer=deps.identity.organisation(),
            secret=deps.secret,
            on=run_date(created_at),
            registry=deps.registry,
        )
        for decision in decisions:
            her = _her_of(decision)
            if her not in existing:
                _insert_decision(tx, run_id, decision, deps, now)
        stored = _read_decisions(tx, run_id)
        queued = sum(_queue(tx, d, deps, now, d.vedtak_id) for d in stored)
        tx.execute("UPDATE payout_runs SET state = 'enqueued' WHERE id = ?", (run_id,))
    log.info("payout_run_enqueued", run_id=run_id, run_key=run_key, decisions=len(stored))
    return stored, queued


def finish_run(db: Engine, run_id: int, deps: PayoutDeps) -> Path | None:
    """Step 3: write the decision copies and the pain.001 file; mark the run done.

    Returns the payment file, or None when the run pays nobody (or no payer account is set)."""
    db.create_tables(ledger.SCHEMA + SCHEMA)
    run_key, state, created_at = _state(db, run_id)
    if state == "recorded":
        raise ledger.PayoutError(f"payout run {run_id} is not enqueued yet")
    decisions = _read_decisions(db, run_id)
    write_decision_files(decisions, deps.decisions_directory)
    payment_file = write_payment_file(run_key, created_at, decisions, deps)
    with _transaction(db, f"could not finish payout run {run_id}") as tx:
        tx.execute("UPDATE payout_runs SET state = 'done' WHERE id = ?", (run_id,))
    return payment_file


def process_run(db: Engine, run_id: int, deps: PayoutDeps) -> RunOutcome:
    """Steps 2 and 3 for a recorded run; safe to repeat at any point."""
    decisions, queued = enqueue_run(db, run_id, deps)
    payment_file = finish_run(db, run_id, deps)
    release_held(db, deps)  # earlier runs' decisions whose CPA now allows them
    run = ledger.run_record(db, run_id)
    key = run.run_key if run is not None else ""
    return RunOutcome(run_id, key, tuple(decisions), queued, payment_file)


def resume(db: Engine, deps: PayoutDeps) -> list[RunOutcome]:
    """Finish every run a crash left ``recorded`` or ``enqueued``, oldest first."""
    return [process_run(db, r.run_id, deps) for r in ledger.runs(db) if r.state != "done"]


def resend(db: Engine, run_id: int, deps: PayoutDeps) -> int:
    """Queue a new copy of each of the run's decisions (new ebXML MessageId, same decision).

    A run not yet enqueued is first finished (then its decisions are queued once, not twice).
    Returns the number of outbox rows inserted."""
    outcome = process_run(db, run_id, deps)
    if outcome.queued:
        return outcome.queued
    with _transaction(db, f"could not queue payout run {run_id} again") as tx:
        now = deps.now()
        total = 0
        names = {
            str(r[0]) for r in tx.rows("SELECT filename FROM replies WHERE kind = ?", (KIND,))
        }
        for decision in _read_decisions(tx, run_id):
            stem = f"payout-{_safe(decision.vedtak_id)}"
            copies = sum(1 for n in names if n == f"{stem}.eml" or n.startswith(f"{stem}."))
            total += _queue(tx, decision, deps, now, f"{decision.vedtak_id}.{copies + 1}")
    return total


# --- helpers --------------------------------------------------------------------------------------


def run_date(created_at: str) -> date:
    """The Norwegian date a run was recorded: its decisions' vedtaksdato, stable on resend."""
    return local_naive(datetime.fromisoformat(created_at)).date()


def _her_of(decision: Decision) -> str:
    return next(i.id for i in decision.receiver.idents if i.type == "HER")


def _insert_decision(
    db: Transaction, run_id: int, decision: Decision, deps: PayoutDeps, now: datetime
) -> None:
    her = _her_of(decision)
    entry = deps.registry.get(her, local_naive(now).date())
    recipient = entry.mail_address if entry and entry.mail_address else f"HER:{her}"
    cpa_id = entry.cpa_id if entry and entry.cpa_id else deps.cpa_id
    total_ore = int(decision.total * 100)
    db.execute(
        f"INSERT INTO payout_decisions({_DECISION_COLUMNS}, created_at) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            decision.vedtak_id,
            her,
            decision.receiver.name,
            decision.account,
            decision.kid,
            total_ore,
            len(decision.bills),
            recipient,
            cpa_id,
            signed_decision_bytes(decision, deps.signer),
            now.isoformat(),
        ),
    )


def _queue(
    db: Transaction, decision: StoredDecision, deps: PayoutDeps, now: datetime, name: str
) -> int:
    """Insert one outbox row for ``decision`` named after ``name``; 0 if it exists already or
    the decision is held (its receiver's CPA does not take it: recorded in ``payout_held``)."""
    filename = f"payout-{_safe(name)}.eml"
    if db.one("SELECT 1 FROM replies WHERE filename = ?", (filename,)):
        return 0
    route = _route(decision, deps, now)
    if isinstance(route, Held):
        db.execute(
            "INSERT INTO payout_held(vedtak_id, reason, held_at) VALUES (?, ?, ?) "
            "ON CONFLICT (vedtak_id) DO UPDATE SET reason = excluded.reason",
            (decision.vedtak_id, route.reason, now.isoformat()),
        )
        log.warning(
            "payout_decision_held",
            vedtak_id=decision.vedtak_id,
            receiver_her=decision.receiver_her,
            reason=route.reason,
        )
        return 0
    db.execute("DELETE FROM payout_held WHERE vedtak_id = ?", (decision.vedtak_id,))
    message_id, body = ebxml_message(decision, deps, now, route)
    reply = ReplyRecord(
        kind=KIND,
        recipient=route.recipient,
        filename=filename,
        body=body,
        ebxml_message_id=message_id,
        awaits_ack=True,
    )
    write_replies(db, [reply], received_id=None, created_at=now)
    return 1


def _route(decision: StoredDecision, deps: PayoutDeps, now: datetime) -> DecisionRoute | Held:
    return route_decision(
        receiver_her=decision.receiver_her,
        recipient=decision.recipient,
        cpa_id=decision.cpa_id,
        partners=deps.partners(),
        our_her=deps.identity.her_id,
        at=now,
    )


def held_decisions(db: Engine) -> list[HeldDecision]:
    """Every decision held back now, oldest first, with why."""
    db.create_tables(ledger.SCHEMA + SCHEMA)
    rows = db.rows(
        "SELECT h.vedtak_id, d.run_id, d.receiver_her, h.reason, h.held_at "
        "FROM payout_held h JOIN payout_decisions d ON d.vedtak_id = h.vedtak_id "
        "ORDER BY h.held_at, h.vedtak_id"
    )
    return [HeldDecision(str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]


def release_held(db: Engine, deps: PayoutDeps) -> int:
    """Queue every held decision its receiver's CPA now allows; return how many went."""
    queued = 0
    with _transaction(db, "could not release held payout decisions") as tx:
        now = deps.now()
        held = [str(r[0]) for r in tx.rows("SELECT vedtak_id FROM payout_held ORDER BY vedtak_id")]
        for vedtak_id in held:
            (decision,) = _read_decisions_where(tx, "vedtak_id = ?", (vedtak_id,))
            queued += _queue(tx, decision, deps, now, decision.vedtak_id)
    if queued:
        log.info("payout_decisions_released", queued=queued, still_held=len(held) - queued)
    return queued


def write_decision_files(decisions: list[StoredDecision], directory: Path) -> list[Path]:
    """Write each stored decision as ``<directory>/<vedtak id>.xml`` (the operator's copy)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for decision in decisions:
        target = directory / f"{_safe(decision.vedtak_id)}.xml"
        write_atomically(target, decision.body)
        written.append(target)
    if written:
        fsync_dir(directory)
    return written


def payment_run(
    run_key: str, created_at: str, decisions: list[StoredDecision], deps: PayoutDeps
) -> PaymentRun | None:
    """The run's payments: every payee with an account and a net above 0 (see payees.py)."""
    if deps.payer_account is None:
        return None
    payments = tuple(
        Payment(
            end_to_end_id=d.vedtak_id,
            name=d.name,
            account=d.account,
            amount=(Decimal(d.total_ore) / 100).quantize(Decimal("0.01")),
            kid=d.kid,
            reference=f"Utbetalingsvedtak {d.vedtak_id}",
        )
        for d in decisions
        if d.account is not None and d.total_ore > 0
    )
    if not payments:
        return None
    created = local_naive(datetime.fromisoformat(created_at))
    return PaymentRun(
        message_id=f"PAYOUT-{run_key}",
        created_at=created,
        execution_date=created.date(),
        payer_name=deps.identity.name,
        payer_org_number=deps.identity.enh_id,
        payer_account=deps.payer_account,
        payer_bic=deps.payer_bic,
        payments=payments,
    )


def write_payment_file(
    run_key: str, created_at: str, decisions: list[StoredDecision], deps: PayoutDeps
) -> Path | None:
    """Write ``<payments directory>/<run key>.pain001.xml``; None when nobody is paid."""
    run = payment_run(run_key, created_at, decisions, deps)
    if run is None:
        if deps.payer_account is None and any(d.total_ore > 0 for d in decisions):
            log.warning("payout_no_payment_file", run_key=run_key, reason="payout.payer_account")
        return None
    deps.payments_directory.mkdir(parents=True, exist_ok=True)
    target = deps.payments_directory / f"{_safe(run_key)}.pain001.xml"
    write_atomically(target, build_pain001(run), sync_dir=True)
    return target


def _safe(name: str) -> str:
    return _SAFE.sub("_", name)[:120] or "run"


def _mail_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1] if "@" in address else "gateway.local"


# --- wiring from the config -----------------------------------------------------------------------


def payout_config_of(config: Config) -> PayoutConfig:
    """The ``[payout]`` settings of ``config``."""
    return PayoutConfig.from_table(config.table("payout"))


def deps_from_config(
    config: Config,
    payout: PayoutConfig,
    *,
    practices: PracticeSource,
    signer: Signer | None = None,
    partners: Callable[[], PartnerRegistry | None] | None = None,
) -> PayoutDeps:
    """Everything sending needs, from the loaded config and the practice register in force
    (pass the daemon's ``signer`` and ``partners`` to avoid loading the key twice and to follow
    its reloads; else the partners directory is read here)."""
    default_dir = config.outbox.directory / "payout"
    if partners is None:
        directory = config.partners.directory
        registry = PartnerRegistry.load(directory) if directory is not None else None
        partners = lambda: registry  # noqa: E731 - the registry as loaded now
    return PayoutDeps(
        identity=config.identity,
        signer=signer or load_signer(config.signing.key_file, config.signing.cert_file),
        secret=reference_secret(config.signing.key_file),
        registry=Recipients(practices),
        decisions_directory=payout.decisions_directory or default_dir,
        payments_directory=payout.payments_directory or default_dir,
        payer_account=payout.payer_account,
        payer_bic=payout.payer_bic,
        cpa_id=payout.cpa_id,
        partners=partners,
    )
