"""The delivery schedule: each delivery at its cron's fire times, inside ``gateway run``.

Like the payout scheduler (``gateway.payout.schedule``) it uses only APScheduler's
``CronTrigger`` to compute fire times and keeps its state in the claims database: a fire time is
claimed with an INSERT into ``delivery_fires`` (primary key delivery + fire time) before it is
delivered, so two daemons never both deliver it. A fire missed while no daemon ran is caught up
once (the latest missed fire of each delivery); fire times before the scheduler first ran are
not. The period delivered is the last whole one before the fire's local day
(``extracts.due_period``). A fire is delivered at most once: one whose delivery fails (a key file
gone, a full disk) is logged as ``delivery_failed`` and stays claimed; the operator repeats it
with ``gateway deliveries run NAME --period P --by WHO``. The other deliveries go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.clock import utc_now
from gateway.deliveries.config import DeliveriesConfig, Extract
from gateway.deliveries.extracts import due_period
from gateway.deliveries.log import SCHEMA, LogEntry, deliver
from gateway.logs import get_logger
from gateway.store.engine import Engine

__all__ = ["DeliveryScheduler"]

log = get_logger("deliveries.schedule")

_STATE = """
CREATE TABLE IF NOT EXISTS delivery_schedule_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    started_at  TEXT NOT NULL
);
"""
_ONE_US = timedelta(microseconds=1)


class DeliveryScheduler:
    """Runs every configured delivery at its fire times."""

    name = "deliveries"

    def __init__(
        self,
        config: DeliveriesConfig,
        db: Engine,
        clock: Callable[[], datetime] = utc_now,
        *,
        max_sleep: float = 60.0,
        mirror: Path | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.mirror = mirror  # the statistics mirror's directory, for statistics extracts
        self.clock = clock
        self.max_sleep = max_sleep

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what is due until ``stop`` is set; an error is logged and retried later."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.run_due)
            except Exception:
                log.exception("delivery_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.seconds_to_next())

    def seconds_to_next(self) -> float:
        now = self.clock()
        times: list[datetime] = []
        for extract in self.config.extracts:
            upcoming: datetime | None = self.config.trigger(extract).get_next_fire_time(
                None, now + _ONE_US
            )
            if upcoming is not None:
                times.append(upcoming)
        if not times:
            return self.max_sleep
        return max(0.01, min(self.max_sleep, (min(times) - now).total_seconds()))

    def run_due(self) -> list[LogEntry]:
        """Claim and deliver every due fire (one per delivery: the latest)."""
        delivered: list[LogEntry] = []
        for extract in self.config.extracts:
            fire = self._claim(extract)
            if fire is not None:
                local_day = fire.astimezone(self.config.trigger(extract).timezone).date()
                period = due_period(extract, local_day)
                try:
                    entry = deliver(
                        self.db, self.config, extract, period, by="scheduler", mirror=self.mirror
                    )
                except Exception:
                    # The fire stays claimed (at most once): the operator repeats it by hand.
                    log.exception("delivery_failed", delivery=extract.name, period=period)
                    continue
                delivered.append(entry)
        return delivered

    def _claim(self, extract: Extract) -> datetime | None:
        now = self.clock()
        self.db.create_tables(SCHEMA + _STATE)
        with self.db.transaction(f"could not claim a fire of delivery {extract.name}") as tx:
            tx.serialise("deliveries")  # instances on one PostgreSQL database decide in turn
            tx.execute(
                "INSERT INTO delivery_schedule_state(id, started_at) VALUES (1, ?) "
                "ON CONFLICT DO NOTHING",
                (now.astimezone(UTC).isoformat(),),
            )
            (started,) = tx.one("SELECT started_at FROM delivery_schedule_state") or (None,)
            (last,) = tx.one(
                "SELECT MAX(fire_time) FROM delivery_fires WHERE delivery = ?", (extract.name,)
            ) or (None,)
            after = datetime.fromisoformat(str(last or started))
            trigger = self.config.trigger(extract)
            fire: datetime | None = None
            moment = after
            while True:  # the latest fire time in (after, now]
                candidate: datetime | None = trigger.get_next_fire_time(None, moment + _ONE_US)
                if candidate is None or candidate > now:
                    break
                fire, moment = candidate, candidate
            if fire is None:
                return None
            claimed = tx.execute(
                "INSERT INTO delivery_fires(delivery, fire_time, claimed_at) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (extract.name, fire.astimezone(UTC).isoformat(), now.astimezone(UTC).isoformat()),
            )
            return fire if claimed else None
