"""The payout schedule: run the ledger at the cron's fire times, inside the daemon's loop.

Why not ``AsyncIOScheduler``: its job state lives in the process (or in an SQLAlchemy job store
that APScheduler 3.x does not let two schedulers share), its misfire handling cannot know
about fire times missed while no process ran, and it cannot keep a second daemon on the same
database from running the same fire. So this module uses only APScheduler's ``CronTrigger`` to
compute fire times, keeps its state in the claims database, and sleeps on the daemon's stop
event in between (at most ``max_sleep`` seconds at a time, so a changed clock or a fire time
claimed elsewhere is noticed soon).

State (own tables on the claims database, through the store's engine, like the ledger):

- ``payout_schedule_state``: ``started_at``, when a scheduler first ran on this database.
  Fire times before it are not caught up (a new installation does not pay "missed" history).
- ``payout_schedule_fires``: one row per fire time claimed (primary key), with its run key,
  who claimed it and when.

``run_due`` (one tick) does, in order:

1. **Take over** a claimed fire whose run is not ``done`` and whose claim is older than
   ``payout.claim_lease_seconds`` (its daemon died mid-run): re-claim it and run it again.
2. **The latest due fire**: the latest fire time F with ``last < F <= now``, where ``last`` is
   the latest claimed fire (or ``started_at``). Missed fires before F are skipped: several
   missed days give ONE catch-up run. F is claimed with an INSERT in a payout transaction
   (``ledger.payout_transaction``: serialised across instances); a second daemon's INSERT of
   the same F finds the row and does nothing.
3. The claimed fire is run: ``ledger.run(key, hold=...)`` records it (the run key is F in the
   schedule's time zone, ``YYYY-MM-DDTHHMM``, e.g. ``2026-11-23T1600``; a catch-up run keeps
   the key of the latest missed fire, and pays everything owed up to the moment it runs), then
   ``sending.process_run`` stores, queues and writes its decisions and payment file.

Exactly once does not rest on the claim alone: the ledger's unique run key and its serialised
transaction make a second run of the same key a no-op, and enqueueing is idempotent, so even a
take-over racing a slow daemon pays nothing twice. On start, ``run`` first finishes runs a
crash left unsent (``sending.resume``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from gateway.clock import utc_now
from gateway.logs import get_logger
from gateway.payout import ledger, sending
from gateway.payout.config import PayoutConfig
from gateway.payout.payees import hold_for
from gateway.payout.sending import PayoutDeps, RunOutcome
from gateway.store.engine import Engine, Transaction

log = get_logger("payout.schedule")

SCHEMA = """
CREATE TABLE IF NOT EXISTS payout_schedule_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    started_at  TEXT    NOT NULL                 -- UTC: no fire before this is caught up
);
CREATE TABLE IF NOT EXISTS payout_schedule_fires (
    fire_time   TEXT    PRIMARY KEY,             -- UTC, ISO 8601
    run_key     TEXT    NOT NULL,
    claimed_by  TEXT    NOT NULL,                -- host:pid:random of the claiming scheduler
    claimed_at  TEXT    NOT NULL,                -- UTC
    catch_up    INTEGER NOT NULL                 -- 1: claimed after its time (missed)
);
"""

_ONE_US = timedelta(microseconds=1)
#: A fire claimed later than this after its time is logged and recorded as a catch-up.
LATE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Fire:
    """A fire time claimed by this scheduler."""

    fire_time: datetime  # UTC
    run_key: str
    catch_up: bool
    take_over: bool = False


class PayoutScheduler:
    """Runs payout at the configured cron times; safe with several instances on one database."""

    name = "payout"

    def __init__(
        self,
        config: PayoutConfig,
        db: Engine,
        deps: PayoutDeps,
        clock: Callable[[], datetime] = utc_now,
        *,
        flush: Callable[[], object] | None = None,
        max_sleep: float = 60.0,
        owner: str | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.deps = deps
        self.clock = clock
        self.flush = flush
        self.max_sleep = max_sleep
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.trigger: CronTrigger = config.trigger()
        self._hold = hold_for(deps.registry)

    # --- the daemon's entry point ------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Finish unsent runs, then run each due fire until ``stop`` is set.

        The database work runs in a thread (``asyncio.to_thread``); an error in one tick is
        logged and retried at the next, it never stops the daemon."""
        try:
            resumed = await asyncio.to_thread(sending.resume, self.db, self.deps)
            if resumed:
                log.warning("payout_runs_resumed", runs=[r.run_key for r in resumed])
                await self._flush()
        except Exception:
            log.exception("payout_resume_failed")
        while not stop.is_set():
            try:
                outcome = await asyncio.to_thread(self.run_due)
                if outcome is not None:
                    await self._flush()
            except Exception:
                log.exception("payout_tick_failed")
            delay = self.seconds_to_next()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _flush(self) -> None:
        if self.flush is not None:
            await asyncio.to_thread(self.flush)

    def seconds_to_next(self) -> float:
        """Seconds until the next fire time (at most ``max_sleep``, at least 0.01)."""
        now = self.clock()
        upcoming: datetime | None = self.trigger.get_next_fire_time(None, now + _ONE_US)
        if upcoming is None:
            return self.max_sleep
        return max(0.01, min(self.max_sleep, (upcoming - now).total_seconds()))

    # --- one tick ----------------------------------------------------------------------------

    def run_due(self) -> RunOutcome | None:
        """Claim and run a fire that is due (a take-over first, else the latest due one).

        Returns the outcome, or None when nothing was due or another instance has it."""
        fire = self.claim_due()
        if fire is None:
            return None
        log.info(
            "payout_fire",
            run_key=fire.run_key,
            catch_up=fire.catch_up,
            take_over=fire.take_over,
            owner=self.owner,
        )
        result = ledger.run(self.db, fire.run_key, hold=self._hold)
        if result.held:
            log.warning(
                "payout_held",
                run_key=fire.run_key,
                bills=len(result.held),
                senders=sorted({x.receiver_her for x in result.held}),
            )
        outcome = sending.process_run(self.db, result.run_id, self.deps)
        log.info(
            "payout_run_done",
            run_key=fire.run_key,
            created=result.created,
            decisions=len(outcome.decisions),
            queued=outcome.queued,
            payment_file=str(outcome.payment_file) if outcome.payment_file else None,
        )
        return outcome

    def claim_due(self) -> Fire | None:
        """Claim, in one payout transaction, the fire this tick should run."""
        now = self.clock()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO payout_schedule_state(id, started_at) VALUES (1, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (_iso(now),),
            )
            taken = self._take_over(db, now)
            if taken is not None:
                return taken
            state = db.one("SELECT started_at FROM payout_schedule_state")
            assert state is not None  # inserted above
            started = _parse(str(state[0]))
            row = db.one("SELECT MAX(fire_time) FROM payout_schedule_fires")
            last = max(started, _parse(row[0])) if row and row[0] is not None else started
            fire_time = self.latest_fire(last, now)
            if fire_time is None:
                return None
            key = self.run_key(fire_time)
            # A tick claims a fire within max_sleep of its time; much later, it was missed.
            catch_up = now - fire_time > LATE_AFTER
            inserted = db.execute(
                "INSERT INTO payout_schedule_fires(fire_time, run_key, claimed_by, "
                "claimed_at, catch_up) VALUES (?, ?, ?, ?, ?) ON CONFLICT (fire_time) DO NOTHING",
                (_iso(fire_time), key, self.owner, _iso(now), int(catch_up)),
            )
            if inserted == 0:
                return None
            return Fire(fire_time.astimezone(UTC), key, catch_up)

    def _take_over(self, db: Transaction, now: datetime) -> Fire | None:
        cutoff = now - timedelta(seconds=self.config.claim_lease_seconds)
        row = db.one(
            "SELECT f.fire_time, f.run_key, f.catch_up FROM payout_schedule_fires f "
            "LEFT JOIN payout_runs r ON r.run_key = f.run_key "
            "WHERE (r.id IS NULL OR r.state <> 'done') AND f.claimed_at < ? "
            "ORDER BY f.fire_time LIMIT 1",
            (_iso(cutoff),),
        )
        if row is None:
            return None
        db.execute(
            "UPDATE payout_schedule_fires SET claimed_by = ?, claimed_at = ? WHERE fire_time = ?",
            (self.owner, _iso(now), row[0]),
        )
        return Fire(_parse(str(row[0])), str(row[1]), bool(row[2]), take_over=True)

    def latest_fire(self, after: datetime, now: datetime) -> datetime | None:
        """The latest fire time F with ``after < F <= now``, or None.

        Searches back from ``now`` in growing windows, so a long downtime with a frequent cron
        does not walk every missed fire time."""
        window = timedelta(days=1)
        while True:
            low = max(after, now - window)
            latest: datetime | None = None
            moment = low
            while True:
                candidate: datetime | None = self.trigger.get_next_fire_time(None, moment + _ONE_US)
                if candidate is None or candidate > now:
                    break
                latest = candidate
                moment = candidate
            if latest is not None or low <= after:
                return latest
            window *= 4

    def run_key(self, fire_time: datetime) -> str:
        """The ledger run key of a fire time: local time in the schedule's zone."""
        return fire_time.astimezone(self.trigger.timezone).strftime("%Y-%m-%dT%H%M")

    # --- storage -----------------------------------------------------------------------------

    def _transaction(self) -> AbstractContextManager[Transaction]:
        self.db.create_tables(ledger.SCHEMA + SCHEMA)
        return ledger.payout_transaction(self.db, "could not claim a payout fire")


def claimed_fires(db: Engine) -> list[tuple[str, str, str, bool]]:
    """(fire time UTC, run key, claimed by, catch-up) of every claimed fire, oldest first."""
    db.create_tables(ledger.SCHEMA + SCHEMA)
    rows = db.rows(
        "SELECT fire_time, run_key, claimed_by, catch_up FROM payout_schedule_fires "
        "ORDER BY fire_time"
    )
    return [(str(a), str(b), str(c), bool(d)) for a, b, c, d in rows]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
