"""The payout schedule: cron fire times, one catch-up after downtime, one runner across
processes, take-over of a dead runner's fire, the daemon loop, and corrections after
overrides made through ``gateway claims override``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.clock import OSLO
from gateway.payout import ledger, sending
from gateway.payout.config import PayoutConfig
from gateway.payout.decision import VEDTAK_NS
from gateway.payout.schedule import PayoutScheduler, claimed_fires
from gateway.payout.sending import PayoutDeps
from gateway.pipeline import Pipeline
from gateway.security.xmldsig import Signer, verify
from gateway.store import Store
from gateway.store.engine import Engine
from tests.test_payout_cli import write_config
from tests.test_payout_sending import (
    HELD,
    REGISTRY,
    Filled,
    PowerCut,
    assert_each_bill_paid_once,
    fill,
    make_deps,
    payout_replies,
    send_claim,
)

NS = {"v": VEDTAK_NS}
PROJECT = Path(__file__).resolve().parents[1]


def oslo(text: str) -> datetime:
    """A Norwegian wall-clock time as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=OSLO)


class Clock:
    """A settable clock for the scheduler."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def deps(tmp_path: Path, signer: Signer) -> PayoutDeps:
    return make_deps(tmp_path, signer)


def scheduler(
    store: Store, deps: PayoutDeps, clock: Clock, owner: str, **config: object
) -> PayoutScheduler:
    return PayoutScheduler(
        PayoutConfig(**config),  # type: ignore[arg-type]
        store.engine,
        deps,
        clock,
        owner=owner,
        max_sleep=0.05,
    )


def run_keys(db: Engine) -> list[str]:
    return [r.run_key for r in ledger.runs(db)]


# --- fire times and catch-up ----------------------------------------------------------------------


def test_the_daily_fire_runs_once_and_the_first_start_does_not_pay_history(
    make_pipeline: Callable[..., Pipeline], store: Store, deps: PayoutDeps
) -> None:
    fill(make_pipeline)
    clock = Clock(oslo("2026-11-23T17:00"))  # after today's 16:00, on a new installation
    first = scheduler(store, deps, clock, "a")
    assert first.run_due() is None  # no state yet: nothing before this start is caught up
    clock.now = oslo("2026-11-24T15:59:59")
    assert first.run_due() is None
    clock.now = oslo("2026-11-24T16:00")
    outcome = first.run_due()
    assert outcome is not None and outcome.run_key == "2026-11-24T1600"
    assert first.run_due() is None  # the same fire is not run twice
    clock.now = oslo("2026-11-24T16:30")
    assert first.run_due() is None
    assert run_keys(store.engine) == ["2026-11-24T1600"]
    assert claimed_fires(store.engine)[0][1:] == ("2026-11-24T1600", "a", False)
    assert first.seconds_to_next() == 0.05  # capped by max_sleep


def test_a_missed_schedule_is_caught_up_once(
    make_pipeline: Callable[..., Pipeline], store: Store, deps: PayoutDeps
) -> None:
    filled = fill(make_pipeline)
    clock = Clock(oslo("2026-11-20T10:00"))
    assert scheduler(store, deps, clock, "before").run_due() is None  # the daemon ran, then died
    # Down over three 16:00 fire times (20th, 21st, 22nd); restarted on the 23rd in the morning.
    clock.now = oslo("2026-11-23T09:00")
    restarted = scheduler(store, deps, clock, "after")
    outcome = restarted.run_due()
    assert outcome is not None
    assert outcome.run_key == "2026-11-22T1600"  # the latest missed fire, once
    assert restarted.run_due() is None
    assert [f[1:] for f in claimed_fires(store.engine)] == [("2026-11-22T1600", "after", True)]
    assert len(outcome.decisions) == 3

    # Bills arriving before today's fire are paid by it, and only they.
    new = send_claim(filled.pipeline, "8100002", "lege", 2, seed=77, day=21)  # as registered
    clock.now = oslo("2026-11-23T16:00:01")
    today = restarted.run_due()
    assert today is not None and today.run_key == "2026-11-23T1600"
    assert [(d.receiver_her, d.bills) for d in today.decisions] == [("8100002", len(new))]
    assert run_keys(store.engine) == ["2026-11-22T1600", "2026-11-23T1600"]
    assert claimed_fires(store.engine)[-1][3] is False
    assert_each_bill_paid_once(store.engine)


def test_a_weekday_cron_in_another_zone(store: Store, deps: PayoutDeps) -> None:
    clock = Clock(oslo("2026-11-20T10:00"))  # a Friday
    weekdays = scheduler(store, deps, clock, "a", cron="30 7 * * mon-fri", timezone="UTC")
    assert weekdays.run_due() is None
    clock.now = oslo("2026-11-23T12:00")  # Monday: the weekend's fires do not exist
    assert weekdays.latest_fire(oslo("2026-11-20T10:00"), clock.now) == oslo("2026-11-23T08:30")
    outcome = weekdays.run_due()
    assert outcome is not None and outcome.run_key == "2026-11-23T0730"


# --- one runner ---------------------------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime
    from pathlib import Path
    from gateway.config import IdentityConfig
    from gateway.payout.config import PayoutConfig
    from gateway.payout.recipients import Recipients
    from gateway.practices.loading import register_from_file
    from gateway.payout.schedule import PayoutScheduler
    from gateway.payout.sending import PayoutDeps
    from gateway.security.xmldsig import Signer
    from gateway.store import Database, Store

    db, key, cert, registry, out, now, owner, go = sys.argv[1:]
    deps = PayoutDeps(
        identity=IdentityConfig("HELFO test", "79768", "889640782", "KontrollUtbetaler",
                                "gateway@kuhr.test"),
        signer=Signer.from_files(Path(key), Path(cert)),
        secret=b"payout-test-secret",
        registry=Recipients(register_from_file(Path(registry))),
        decisions_directory=Path(out) / "payout",
        payments_directory=Path(out) / "payments",
        payer_account="86011117947",
    )
    moment = datetime.fromisoformat(now)
    store = Store(Database.at(db))
    scheduler = PayoutScheduler(PayoutConfig(), store.engine, deps, lambda: moment, owner=owner)
    Path(go + "." + owner).touch()
    while not Path(go).exists():
        time.sleep(0.001)
    outcome = scheduler.run_due()
    print("ran" if outcome else "skipped")
    """
)


@pytest.mark.integration
def test_two_processes_on_one_database_run_a_fire_once(
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    deps: PayoutDeps,
    credentials: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    fill(make_pipeline)
    assert scheduler(store, deps, Clock(oslo("2026-11-22T10:00")), "setup").run_due() is None
    go = tmp_path / "go"
    now = oslo("2026-11-23T16:00:00.5").isoformat()
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                str(store.database),
                str(credentials[0]),
                str(credentials[1]),
                str(REGISTRY),
                str(tmp_path / "out"),
                now,
                owner,
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for owner in ("daemon-1", "daemon-2")
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.daemon-{n}").exists() for n in (1, 2)):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
        time.sleep(0.01)
    go.touch()  # both at once
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
        results.append(out.decode().strip().splitlines()[-1])
    assert sorted(results) == ["ran", "skipped"]
    assert run_keys(store.engine) == ["2026-11-23T1600"]
    (fire,) = claimed_fires(store.engine)
    assert fire[2] in ("daemon-1", "daemon-2")
    assert len(payout_replies(store.engine)) == 3
    assert_each_bill_paid_once(store.engine)


def test_a_dead_runners_fire_is_taken_over_after_the_lease(
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    deps: PayoutDeps,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(make_pipeline)
    clock = Clock(oslo("2026-11-22T10:00"))
    assert scheduler(store, deps, clock, "a").run_due() is None
    clock.now = oslo("2026-11-23T16:00")

    def power_cut(*_args: object, **_kwargs: object) -> None:
        raise PowerCut("the claiming daemon dies before recording the run")

    monkeypatch.setattr(ledger, "run", power_cut)
    with pytest.raises(PowerCut):
        scheduler(store, deps, clock, "a").run_due()
    monkeypatch.undo()
    assert ledger.runs(store.engine) == [] and len(claimed_fires(store.engine)) == 1

    other = scheduler(store, deps, clock, "b", claim_lease_seconds=600)
    clock.now = oslo("2026-11-23T16:05")
    assert other.run_due() is None  # the claim may still be at work
    clock.now = oslo("2026-11-23T16:10:01")
    outcome = other.run_due()
    assert outcome is not None and outcome.run_key == "2026-11-23T1600"
    assert claimed_fires(store.engine)[0][2] == "b"
    assert other.run_due() is None  # done now: not taken over again
    assert len(payout_replies(store.engine)) == 3


# --- in the daemon's loop -------------------------------------------------------------------------


async def test_the_scheduler_loop_resumes_runs_and_fires_until_stopped(
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    deps: PayoutDeps,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(make_pipeline)
    clock = Clock(oslo("2026-11-22T10:00"))
    assert scheduler(store, deps, clock, "a").run_due() is None
    clock.now = oslo("2026-11-23T16:00")
    # The previous daemon recorded the run and died before anything was sent.
    monkeypatch.setattr(sending, "process_run", _die)
    with pytest.raises(PowerCut):
        scheduler(store, deps, clock, "a").run_due()
    monkeypatch.undo()
    assert payout_replies(store.engine) == []

    flushed: list[int] = []
    loop_scheduler = PayoutScheduler(
        PayoutConfig(), store.engine, deps, clock, flush=lambda: flushed.append(1), max_sleep=0.05
    )
    stop = asyncio.Event()
    task = asyncio.create_task(loop_scheduler.run(stop))
    for _ in range(200):
        if len(payout_replies(store.engine)) == 3:
            break
        await asyncio.sleep(0.01)
    assert len(payout_replies(store.engine)) == 3  # resumed on start
    clock.now = oslo("2026-11-24T16:00")  # the next fire, seen within max_sleep
    for _ in range(200):
        if len(ledger.runs(store.engine)) == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert run_keys(store.engine) == ["2026-11-23T1600", "2026-11-24T1600"]
    assert all(r.state == "done" for r in ledger.runs(store.engine))
    assert len(flushed) >= 2
    assert_each_bill_paid_once(store.engine)


def _die(*_args: object, **_kwargs: object) -> None:
    raise PowerCut("after recording the run")


# --- overrides before and after a payout ----------------------------------------------------------


def test_an_override_after_a_payout_is_corrected_in_the_next_scheduled_run(
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    deps: PayoutDeps,
    credentials: tuple[Path, Path],
    tmp_path: Path,
    signer: Signer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    filled: Filled = fill(make_pipeline)
    config = write_config(tmp_path, store, credentials)
    bill_of = _bill_ids(store.engine)
    rejected_before = bill_of[("8100002", filled.bills["8100002"][0].regning_nr)]
    # An override BEFORE the run is honoured: the bill is never paid.
    override = ["claims", "override", str(rejected_before), "--reject", "--by", "Kari"]
    assert main([*override, "--reason", "Mangler dokumentasjon", "--config", str(config)]) == 0

    clock = Clock(oslo("2026-11-22T10:00"))
    daily = scheduler(store, deps, clock, "a")
    assert daily.run_due() is None
    clock.now = oslo("2026-11-23T16:00")
    assert daily.run_due() is not None
    assert _lines(store.engine, rejected_before) == []

    # An override AFTER the payout: rejecting a paid bill of 8100001.
    paid_bill = filled.bills["8100001"][1]
    paid_id = bill_of[("8100001", paid_bill.regning_nr)]
    (payment,) = _lines(store.engine, paid_id)
    override = ["claims", "override", f"8100001:{paid_bill.regning_nr}", "--reject"]
    assert main([*override, "--reason", "Feil takst", "--by", "Ola", "--config", str(config)]) == 0
    capsys.readouterr()

    # Alone, the correction is a negative net: held and carried, not paid back by pain.001.
    clock.now = oslo("2026-11-24T16:00")
    carried = daily.run_due()
    assert carried is not None and carried.decisions == ()
    assert _lines(store.engine, paid_id) == [payment]

    # With new bills the next run nets the correction against them.
    new = send_claim(filled.pipeline, "8100001", "psykolog", 3, seed=555, day=25)
    clock.now = oslo("2026-11-25T16:00")
    outcome = daily.run_due()
    assert outcome is not None
    assert _lines(store.engine, paid_id) == [payment, ("correction", -payment[1])]
    (decision,) = outcome.decisions
    signed = verify(decision.body, signer.cert_pem)
    statuses = {
        el.findtext("v:RegningNr", namespaces=NS): (
            el.findtext("v:Status", namespaces=NS),
            Decimal(el.findtext("v:Utbetalt", namespaces=NS) or ""),
        )
        for el in signed.iterfind("v:Regning", NS)
    }
    assert statuses[paid_bill.regning_nr] == ("korrigert", Decimal(-payment[1]) / 100)
    assert {statuses[b.regning_nr][0] for b in new} == {"godkjent"}
    assert Decimal(signed.findtext("v:Sum/v:Utbetalt", namespaces=NS) or "") * 100 == (
        decision.total_ore
    )
    assert decision.total_ore == sum(
        x.amount_ore for x in ledger.run_lines(store.engine, outcome.run_id)
    )
    assert decision.total_ore > 0 and outcome.payment_file is not None
    assert HELD not in {d.receiver_her for d in outcome.decisions}
    assert_each_bill_paid_once(store.engine)


def _bill_ids(db: Engine) -> dict[tuple[str, str], int]:
    return {
        (str(her), str(nr)): int(i)
        for i, her, nr in db.rows(
            "SELECT id, sender_her, regning_nr FROM bills WHERE kreditering = 0"
        )
    }


def _lines(db: Engine, bill_id: int) -> list[tuple[str, int]]:
    return [
        (str(k), int(a))
        for k, a in db.rows(
            "SELECT kind, amount_ore FROM payout_lines WHERE bill_id = ? ORDER BY id",
            (bill_id,),
        )
    ]
