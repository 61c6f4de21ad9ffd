"""The intake with real worker processes: the time budget, dying workers, concurrent claims for
the same bill, and a stop that ends within the drain time whatever a worker is stuck in.

Messages misbehave by the name they arrive as (``tests.support.workers``): ``hang-*`` never
finishes, ``die-once-*`` kills its worker the first time, ``die-always-*`` every time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import gateway.wiring
from gateway.config import Config
from gateway.daemon import run_daemon
from gateway.intake import IntakeSettings, PipelineIntake
from gateway.intake.workers import PreparerFactory, WorkerPool
from gateway.outbox.files import FileOutbox
from gateway.records import Outcome
from gateway.service.metrics import Metrics
from gateway.store import Database, Store
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message
from tests.support.workers import misbehaving, overlapping

pytestmark = pytest.mark.integration

BUDGET = 2.0


def config_at(
    root: Path, credentials: tuple[Path, Path], *, database: Database | None = None, **daemon: Any
) -> Config:
    key, cert = credentials
    where = {"path": "gateway.sqlite3"} if database is None or database.url is None else {
        "url": database.url
    }
    data: dict[str, Any] = {
        "identity": {"name": "HELFO test", "her_id": "79768"},
        "database": where,
        "spool": {"directory": "spool", "poll_interval": 0.05, "settle_seconds": 0},
        "outbox": {"kind": "file", "directory": "outbox"},
        "signing": {"key_file": str(key), "cert_file": str(cert)},
        "logging": {"level": "warning"},
        "daemon": daemon,
    }
    return Config.from_mapping(data, root / "gateway.toml")


@dataclasses.dataclass
class Site:
    config: Config
    store: Store
    intake: PipelineIntake

    async def take(self, name: str, raw: bytes) -> Outcome:
        return await self.intake(raw, source="spool", source_ref=f"ref-{name}", source_name=name)


@pytest.fixture
def site_with(
    tmp_path: Path, credentials: tuple[Path, Path], database: Database
) -> Iterator[Any]:
    """``site_with(make)``: an intake with two worker processes made by ``make``, on each
    engine (the workers read through a snapshot of SQLite's file or of PostgreSQL)."""
    made: list[Site] = []

    def build(make: PreparerFactory) -> Site:
        config = config_at(tmp_path, credentials, database=database)
        store = Store(config.database)
        settings = IntakeSettings(workers=2, message_budget_seconds=BUDGET, batch_size=64)
        pool = WorkerPool(config, size=2, budget=BUDGET, make=make)
        outbox = FileOutbox(store, config.outbox.directory)
        intake = PipelineIntake(
            store, outbox, Metrics(), pool, settings, alive=pool.alive, files=outbox
        )
        made.append(Site(config, store, intake))
        return made[-1]

    yield build
    for site in made:
        site.intake.close()
        site.store.close()


def claim(seed: int, *, bills: int = 2) -> bytes:
    head, krav = make_claim(
        rng=random.Random(seed),
        practitioner="lege",
        bills=bills,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 8, 30),
    )
    return ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(seed))


def outcomes(store: Store) -> dict[str, tuple[str, str | None]]:
    rows = store.engine.rows("SELECT source_ref, outcome, detail FROM received")
    return {str(ref): (str(outcome), detail) for ref, outcome, detail in rows}


async def test_a_message_over_its_budget_is_parked_alone_and_its_worker_replaced(
    site_with: Any,
) -> None:
    site: Site = site_with(misbehaving)
    names = [f"good-{i}.msg" for i in range(6)]
    started = time.monotonic()
    results = await asyncio.gather(
        site.take("hang-1.msg", claim(99)),
        *(site.take(name, claim(i)) for i, name in enumerate(names)),
    )
    assert results[0] is Outcome.FAILED
    assert set(results[1:]) == {Outcome.ACCEPTED}, "its neighbours are answered"
    assert time.monotonic() - started < BUDGET + 20
    stored = outcomes(site.store)
    outcome, detail = stored["ref-hang-1.msg"]
    assert outcome == "failed" and detail is not None and "budget" in detail
    # The pool still has two workers: two more messages go through at once.
    more = await asyncio.gather(
        site.take("after-1.msg", claim(50)), site.take("after-2.msg", claim(51))
    )
    assert set(more) == {Outcome.ACCEPTED}


async def test_a_worker_that_dies_under_a_message_is_replaced_and_the_message_tried_again(
    site_with: Any,
) -> None:
    site: Site = site_with(misbehaving)
    once, always, good = await asyncio.gather(
        site.take("die-once-1.msg", claim(1)),
        site.take("die-always-1.msg", claim(2)),
        site.take("good-1.msg", claim(3)),
    )
    assert once is Outcome.ACCEPTED, "the second try, on a new worker, succeeds"
    assert good is Outcome.ACCEPTED
    assert always is Outcome.FAILED
    _, detail = outcomes(site.store)["ref-die-always-1.msg"]
    assert detail is not None and "exited" in detail


async def test_two_claims_for_the_same_bill_in_flight_at_once_are_decided_in_turn(
    site_with: Any,
) -> None:
    """Each pair carries the same bill (sender, Guid) in two messages, given at once to two
    workers that each read the store before the other commits: exactly one of each pair is
    approved, the other is rejected as a duplicate, as if they had come one after the other."""
    site: Site = site_with(overlapping)
    pairs = 3
    messages: list[tuple[str, bytes]] = []
    for pair in range(pairs):
        head, krav = make_claim(
            rng=random.Random(700 + pair),
            practitioner="lege",
            bills=1,
            sender=default_sender(),
            receiver=default_receiver(),
            start=datetime(2026, 10, 5, 8, 30)
            + pair * (datetime(2026, 10, 6) - datetime(2026, 10, 5)),
        )
        for copy in range(2):
            again = dataclasses.replace(head, msg_id=f"{head.msg_id}-{copy}")
            raw = ebxml_message(
                msghead_with_bkm(again, krav), rng=random.Random(900 + 2 * pair + copy)
            )
            messages.append((f"pair-{pair}-{copy}.msg", raw))
    with capture_logs() as logs:
        results = await asyncio.gather(*(site.take(name, raw) for name, raw in messages))
    assert sorted(r.value for r in results) == sorted(
        ["accepted"] * pairs + ["rejected"] * pairs
    ), results
    live = site.store.engine.rows("SELECT guid, COUNT(*) FROM bills WHERE live = 1 GROUP BY guid")
    [(duplicates,)] = site.store.engine.rows(
        "SELECT COUNT(*) FROM findings WHERE rule_id = 'DUP-001'"
    )
    assert len(live) == pairs and all(count == 1 for _, count in live)
    assert duplicates == pairs
    assert any(e["event"] == "processed_again" for e in logs), "the conflict path was taken"


async def test_sigterm_ends_the_daemon_within_the_drain_time_whatever_a_worker_is_stuck_in(
    tmp_path: Path, credentials: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pools: list[WorkerPool] = []

    def recording_pool(*args: Any, **kwargs: Any) -> WorkerPool:
        pools.append(WorkerPool(*args, **{**kwargs, "make": misbehaving}))
        return pools[-1]

    monkeypatch.setattr(gateway.wiring, "WorkerPool", recording_pool)
    config = dataclasses.replace(
        config_at(tmp_path, credentials, workers=2, message_budget_seconds=600.0),
        drain_seconds=2.0,
    )
    incoming = config.spool.incoming
    incoming.mkdir(parents=True)
    (incoming / "hang-1.msg").write_bytes(claim(1))
    task = asyncio.create_task(run_daemon(config))
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + 60
    while not (
        list(config.spool.work.glob("*hang-1.msg"))
        and pools
        and signal.SIGTERM in getattr(loop, "_signal_handlers", {})
    ):
        assert time.monotonic() < deadline, "the daemon did not take the file"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # in the worker now
    stopping = time.monotonic()
    signal.raise_signal(signal.SIGTERM)
    code = await asyncio.wait_for(task, timeout=30)
    assert time.monotonic() - stopping < config.drain_seconds + 5
    assert code == 1, "the drain timed out: the message is recovered at the next start"
    (pool,) = pools
    assert not pool.alive()
    assert list(config.spool.work.glob("*hang-1.msg")), "left in work/ for the next start"
