"""The exactly-once payout ledger (gateway.payout.ledger), on bills stored by the real pipeline."""

from __future__ import annotations

import dataclasses
import random
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from gateway.casework import CaseworkError, override
from gateway.claims.model import BehandlerKrav, Enkeltregning, MsgHead
from gateway.payout import ledger
from gateway.payout.payees import hold_for
from gateway.payout.recipients import Recipients
from gateway.pipeline import Pipeline
from gateway.practices.legacy import LegacyReceiver, legacy_register
from gateway.records import CaseBill
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.security.xmldsig import Signer
from gateway.store import Store
from gateway.store.engine import Engine, Transaction
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message
from gateway.validation.catalog import SchemaCatalog
from tests.conftest import FIXED_NOW, IDENTITY

START = datetime(2026, 10, 5, 8, 30)
HER_A, HER_B = "8141253", "8100002"
#: Both senders are known as lege: a sender of unknown type is held for manual control.
PRACTITIONERS = {HER_A: "lege", HER_B: "lege"}


# --- stored bills through the pipeline ------------------------------------------------------------


def claim(seed: int, bills: int, her: str = HER_A) -> tuple[MsgHead, BehandlerKrav]:
    return make_claim(
        rng=random.Random(seed),
        practitioner="lege",
        bills=bills,
        sender=default_sender(her),
        receiver=default_receiver(),
        start=START + timedelta(days=seed % 40),
    )


def with_bills(krav: BehandlerKrav, bills: list[Enkeltregning]) -> BehandlerKrav:
    return dataclasses.replace(
        krav,
        regninger=tuple(bills),
        antall_regninger=len(bills),
        sum_krav_samlet=sum((b.behandling.sum_refusjon for b in bills), Decimal("0.00")),
    )


def send(pipeline: Pipeline, head: MsgHead, krav: BehandlerKrav, ref: str) -> None:
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(hash(ref) & 0xFFFF))
    pipeline.handle(raw, source="spool", source_ref=ref, source_name=f"{ref}.msg")


def stored(store: Store, regning: Enkeltregning, *, credit: bool = False) -> CaseBill:
    for bill_id in store.casework.bill_ids(guid=regning.guid):
        bill = store.casework.bill(bill_id)
        assert bill is not None
        if bill.kreditering == credit:
            return bill
    raise AssertionError(f"bill {regning.regning_nr} not stored")


def send_credit(pipeline: Pipeline, original: Enkeltregning, seed: int, her: str = HER_A) -> None:
    head, krav = claim(seed, bills=1, her=her)
    credit = dataclasses.replace(original, kreditering=True, regning_nr=f"K{seed}")
    send(pipeline, head, with_bills(krav, [credit]), f"credit-{seed}")


def bill_rows(db: Engine) -> list[tuple[int, str, str, int, int, int]]:
    return [
        (int(a), str(b), str(c), int(d), int(e), int(f))
        for a, b, c, d, e, f in db.rows(
            "SELECT b.id, b.sender_her, e.status, e.approved_ore, b.kreditering, b.manual "
            "FROM bills b JOIN bill_status_effective e ON e.bill_id = b.id ORDER BY b.id"
        )
    ]


def lines_of(db: Engine, bill_id: int) -> list[tuple[str, int]]:
    return [
        (str(k), int(a))
        for k, a in db.rows(
            "SELECT kind, amount_ore FROM payout_lines WHERE bill_id = ? ORDER BY id",
            (bill_id,),
        )
    ]


def all_lines(db: Engine) -> int:
    return int(db.rows("SELECT COUNT(*) FROM payout_lines")[0][0])


@dataclasses.dataclass
class Setup:
    pipeline: Pipeline
    a: list[Enkeltregning]
    b: list[Enkeltregning]


@pytest.fixture
def setup(make_pipeline: Callable[..., Pipeline]) -> Setup:
    pipeline = make_pipeline(practitioners=PRACTITIONERS)
    head, krav = claim(1, bills=3, her=HER_A)
    send(pipeline, head, krav, "a")
    head_b, krav_b = claim(2, bills=2, her=HER_B)
    send(pipeline, head_b, krav_b, "b")
    return Setup(pipeline, list(krav.regninger), list(krav_b.regninger))


# --- runs -----------------------------------------------------------------------------------------


def test_first_run_pays_each_approved_bill_once_and_a_second_pays_nothing(
    setup: Setup, store: Store
) -> None:
    rows = bill_rows(store.engine)
    assert len(rows) == 5 and all(r[2] == "godkjent" and r[5] == 0 for r in rows)
    expected: dict[str, int] = {}
    for _id, her, _status, ore, _kred, _manual in rows:
        expected[her] = expected.get(her, 0) + ore

    preview = ledger.plan(store.engine)
    assert {x.bill_id for x in preview} == {r[0] for r in rows}
    assert all(x.kind == "payment" and x.paid_ore == 0 for x in preview)
    assert ledger.runs(store.engine) == []  # the preview recorded nothing

    first = ledger.run(store.engine, "2026-11-23")
    assert first.created and first.per_receiver == expected
    for bill_id, _her, _s, ore, _k, _m in rows:
        assert lines_of(store.engine, bill_id) == [("payment", ore)]
    lines = ledger.run_lines(store.engine, first.run_id)
    assert sum(x.amount_ore for x in lines) == sum(expected.values())

    assert ledger.plan(store.engine) == []
    second = ledger.run(store.engine, "2026-11-24")
    assert second.created and second.per_receiver == {}
    assert ledger.run_lines(store.engine, second.run_id) == []
    assert [(r.run_key, r.lines, r.total_ore) for r in ledger.runs(store.engine)] == [
        ("2026-11-23", 5, sum(expected.values())),
        ("2026-11-24", 0, 0),
    ]


def test_the_same_run_key_returns_the_same_run_and_pays_nothing_new(
    setup: Setup, store: Store
) -> None:
    first = ledger.run(store.engine, "2026-11-23")
    # A new bill arrives: a re-run of the same schedule still pays nothing new.
    head, krav = claim(3, bills=1)
    send(setup.pipeline, head, krav, "late")
    again = ledger.run(store.engine, "2026-11-23")
    assert not again.created
    assert (again.run_id, again.run_key, again.per_receiver) == (
        first.run_id,
        first.run_key,
        first.per_receiver,
    )
    assert all_lines(store.engine) == 5
    late = stored(store, krav.regninger[0])
    assert [(x.bill_id, x.kind) for x in ledger.plan(store.engine)] == [(late.id, "payment")]
    assert ledger.run(store.engine, "2026-11-24").per_receiver == {HER_A: late.effective_ore}


def test_overrides_after_a_payout_are_corrected_in_the_next_run(setup: Setup, store: Store) -> None:
    ledger.run(store.engine, "2026-11-23")
    paid = stored(store, setup.a[0])
    override(store, paid, decision="avvist", reason="Ikke dokumentert", by="Kari")
    result = ledger.run(store.engine, "2026-11-24")
    assert result.per_receiver == {HER_A: -paid.effective_ore}
    assert lines_of(store.engine, paid.id) == [
        ("payment", paid.effective_ore),
        ("correction", -paid.effective_ore),
    ]
    # A lower approved amount pays back only the difference.
    partial = stored(store, setup.b[0])
    lower = partial.effective_ore // 2
    override(store, partial, decision="godkjent", amount_ore=lower, reason="Delvis", by="Kari")
    assert ledger.run(store.engine, "2026-11-25").per_receiver == {
        HER_B: lower - partial.effective_ore
    }
    assert ledger.plan(store.engine) == []


def test_an_override_approving_a_rejected_bill_is_paid_in_the_next_run(
    make_pipeline: Callable[..., Pipeline], store: Store
) -> None:
    pipeline = make_pipeline(practitioners=PRACTITIONERS)
    head, krav = claim(4, bills=2)
    bills = list(krav.regninger)
    bills[1] = dataclasses.replace(bills[1], dato_tid=datetime(2027, 1, 1, 9, 0))  # future: avvist
    send(pipeline, head, with_bills(krav, bills), "future")
    rejected = stored(store, bills[1])
    assert rejected.effective_status == "avvist"
    first = ledger.run(store.engine, "2026-11-23")
    assert lines_of(store.engine, rejected.id) == []
    assert first.per_receiver == {HER_A: stored(store, bills[0]).effective_ore}

    ore = rejected.sum_refusjon_ore
    override(store, rejected, decision="godkjent", amount_ore=ore, reason="Rettet", by="Ola")
    assert ledger.run(store.engine, "2026-11-24").per_receiver == {HER_A: ore}
    assert lines_of(store.engine, rejected.id) == [("payment", ore)]


def test_a_credit_of_a_paid_bill_reverses_the_paid_amount(setup: Setup, store: Store) -> None:
    ledger.run(store.engine, "2026-11-23")
    original = stored(store, setup.a[1])
    send_credit(setup.pipeline, setup.a[1], 5)
    credit = stored(store, setup.a[1], credit=True)
    assert credit.effective_status == "godkjent"
    assert stored(store, setup.a[1]).credited_by == credit.id

    result = ledger.run(store.engine, "2026-11-24")
    assert result.per_receiver == {HER_A: -original.effective_ore}
    assert lines_of(store.engine, credit.id) == [("reversal", -original.effective_ore)]
    assert lines_of(store.engine, original.id) == [("payment", original.effective_ore)]
    assert ledger.plan(store.engine) == []


def test_a_bill_credited_before_any_payout_is_never_paid(setup: Setup, store: Store) -> None:
    send_credit(setup.pipeline, setup.a[2], 6)
    original = stored(store, setup.a[2])
    assert original.credited_by is not None
    ledger.run(store.engine, "2026-11-23")
    assert lines_of(store.engine, original.id) == []
    assert lines_of(store.engine, original.credited_by) == []
    assert ledger.plan(store.engine) == []


def test_bills_for_manual_control_are_held_until_a_case_worker_decides(
    setup: Setup, store: Store
) -> None:
    held = stored(store, setup.a[0])
    with store.engine.transaction("test") as tx:  # as a rule's "kontrolleres manuelt" stores it
        tx.execute("UPDATE bills SET manual = 1 WHERE id = ?", (held.id,))
    first = ledger.run(store.engine, "2026-11-23")
    assert lines_of(store.engine, held.id) == []
    assert HER_A in first.per_receiver  # the other bills of the receiver are paid
    assert ledger.run(store.engine, "2026-11-24").per_receiver == {}

    override(store, held, decision="godkjent", reason="Kontrollert", by="Kari")
    assert ledger.run(store.engine, "2026-11-25").per_receiver == {HER_A: held.effective_ore}
    assert lines_of(store.engine, held.id) == [("payment", held.effective_ore)]


def test_a_crash_inside_the_run_leaves_no_run_and_no_lines(
    setup: Setup, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(db: Transaction, run_id: int, lines: list[ledger.PlannedLine]) -> None:
        db.execute(
            "INSERT INTO payout_lines(run_id, receiver_her, bill_id, kind, amount_ore) "
            "VALUES (?, ?, ?, ?, ?)",
            (run_id, lines[0].receiver_her, lines[0].bill_id, lines[0].kind, 1),
        )
        raise RuntimeError("power cut")

    monkeypatch.setattr(ledger, "_insert_lines", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        ledger.run(store.engine, "2026-11-23")
    monkeypatch.undo()
    assert ledger.runs(store.engine) == []
    assert all_lines(store.engine) == 0

    # The restart pays everything, once.
    result = ledger.run(store.engine, "2026-11-23")
    assert result.created and all_lines(store.engine) == 5


def test_an_empty_run_key_is_refused(store: Store) -> None:
    with pytest.raises(ledger.PayoutError):
        ledger.run(store.engine, " ")


# --- property: random streams of overrides, credits and runs ---------------------------------


EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("run"), st.integers(0, 4), st.integers(1, 100)),
        st.tuples(st.just("reject"), st.integers(0, 4), st.integers(1, 100)),
        st.tuples(st.just("approve"), st.integers(0, 4), st.integers(1, 100)),
        st.tuples(st.just("credit"), st.integers(0, 4), st.integers(1, 100)),
    ),
    max_size=12,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=EVENTS)
@example(
    events=[
        ("run", 0, 1),
        ("credit", 0, 1),
        ("reject", 1, 1),
        ("run", 0, 1),
        ("approve", 1, 50),
        ("credit", 1, 1),
        ("credit", 2, 1),
        ("reject", 3, 1),
        ("run", 0, 1),
        ("approve", 3, 100),
    ]
)
def test_lines_per_receiver_always_sum_to_approved_minus_credited(
    events: list[tuple[str, int, int]], catalog: SchemaCatalog, signer: Signer
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "gateway.sqlite3")
        try:
            _check_stream(store, events, catalog, signer)
        finally:
            store.close()


def _check_stream(
    store: Store,
    events: list[tuple[str, int, int]],
    catalog: SchemaCatalog,
    signer: Signer,
    hold: ledger.Hold | None = None,
) -> None:
    pipeline = Pipeline(
        identity=IDENTITY,
        store=store,
        catalog=catalog,
        signer=signer,
        engine=RuleEngine(RULES),
        max_message_bytes=10 * 1024 * 1024,
        clock=lambda: FIXED_NOW,
        practices=legacy_register(PRACTITIONERS),
    )
    head, krav = claim(1, bills=3, her=HER_A)
    send(pipeline, head, krav, "a")
    head_b, krav_b = claim(2, bills=2, her=HER_B)
    send(pipeline, head_b, krav_b, "b")
    regninger = [*krav.regninger, *krav_b.regninger]
    hers = [HER_A] * 3 + [HER_B] * 2
    # The model: per original, the approved amount (0 if rejected) and whether it is credited.
    amount = {i: stored(store, r).effective_ore for i, r in enumerate(regninger)}
    credited = dict.fromkeys(amount, False)
    runs = 0
    assert ledger.runs(store.engine) == []  # creates the ledger's tables

    for n, (kind, i, pct) in enumerate(events):
        bill = stored(store, regninger[i])
        if kind == "run":
            before = {b: lines_of(store.engine, b) for b in (r[0] for r in bill_rows(store.engine))}
            runs += 1
            result = ledger.run(store.engine, f"run-{runs}", hold=hold)
            if hold is not None:
                # A run never pays a receiver a negative net: that is held and carried.
                assert all(total >= 0 for total in result.per_receiver.values())
            for bill_id, old in before.items():
                new = lines_of(store.engine, bill_id)
                # Never a second payment of a bill already paid.
                if any(k == "payment" for k, _ in old):
                    assert [k for k, _ in new].count("payment") == 1
            _assert_balanced(store, hers, amount, credited, carried=hold is not None)
        elif kind == "reject":
            try:
                override(store, bill, decision="avvist", reason="Nei", by="Kari")
            except CaseworkError:
                assert credited[i]
            else:
                amount[i] = 0
        elif kind == "approve":
            ore = max(1, bill.sum_refusjon_ore * pct // 100)
            try:
                override(store, bill, decision="godkjent", amount_ore=ore, reason="Ja", by="Ola")
            except CaseworkError:
                assert credited[i]
            else:
                amount[i] = ore
        else:
            if credited[i]:
                continue  # the original is consumed; a second credit finds nothing to credit
            send_credit(pipeline, regninger[i], 100 + n, her=hers[i])
            now_credited = stored(store, regninger[i]).credited_by is not None
            # A credit is approved exactly when it finds an approved, uncredited original.
            assert now_credited == (amount[i] > 0)
            credited[i] = now_credited
            event(f"credit {'approved' if now_credited else 'rejected'}")

    ledger.run(store.engine, "final", hold=hold)
    _assert_balanced(store, hers, amount, credited, carried=hold is not None)
    if hold is None:
        assert ledger.plan(store.engine) == []
    else:  # what is left is a carried negative net, nothing else
        left: dict[str, int] = {}
        for line in ledger.plan(store.engine):
            left[line.receiver_her] = left.get(line.receiver_her, 0) + line.amount_ore
        assert all(total < 0 for total in left.values())


def _assert_balanced(
    store: Store,
    hers: list[str],
    amount: dict[int, int],
    credited: dict[int, bool],
    *,
    carried: bool = False,
) -> None:
    """Recorded lines per receiver equal approved minus credited; with ``carried``, the
    recorded lines plus what is still held (carried) do."""
    expected = dict.fromkeys(set(hers), 0)
    for i, her in enumerate(hers):
        if not credited[i]:
            expected[her] += amount[i]
    got = dict.fromkeys(set(hers), 0)
    for her, total in store.engine.rows(
        "SELECT receiver_her, SUM(amount_ore) FROM payout_lines GROUP BY receiver_her"
    ):
        got[str(her)] = int(total)
    payments = store.engine.rows(
        "SELECT bill_id FROM payout_lines WHERE kind = 'payment' "
        "GROUP BY bill_id HAVING COUNT(*) > 1"
    )
    if carried:
        for line in ledger.plan(store.engine):
            got[line.receiver_her] += line.amount_ore
    assert got == expected
    assert payments == []


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=EVENTS)
@example(events=[("run", 0, 1), ("credit", 0, 1), ("run", 0, 1), ("approve", 1, 10)])
def test_with_holds_no_run_pays_a_negative_net_and_nothing_is_lost(
    events: list[tuple[str, int, int]], catalog: SchemaCatalog, signer: Signer
) -> None:
    registry = Recipients(
        legacy_register(
            PRACTITIONERS,
            [
                LegacyReceiver(HER_A, "A", account="86011117947"),
                LegacyReceiver(HER_B, "B", account="15061200018"),
            ],
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "gateway.sqlite3")
        try:
            _check_stream(store, events, catalog, signer, hold=hold_for(registry))
        finally:
            store.close()
