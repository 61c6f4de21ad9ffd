"""gateway.testing.history: the in-memory claim history answers as the store does."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal

from gateway.claims.model import BehandlerKrav, Enkeltregning, Ident, MsgHead, Takst
from gateway.claims.practitioner import practitioner_id
from gateway.pipeline import Pipeline
from gateway.rules.base import HistoricBill, StoredBill
from gateway.store import Store
from gateway.testing.claims import (
    default_receiver,
    default_sender,
    make_claim,
    make_fnr,
    msghead_with_bkm,
)
from gateway.testing.history import (
    MemoryHistory,
    behandlerkrav,
    context,
    enkeltregning,
    msghead,
)
from gateway.testing.messages import ebxml_message

DAY = datetime(2026, 10, 5)


def historic(
    guid: str, at: datetime, *takster: tuple[str, int], patient: str = "p1", hpr: str = "h1"
) -> HistoricBill:
    return HistoricBill(guid, guid.upper(), "8141253", hpr, patient, at, takster)


def test_window_queries_are_half_open_by_person_and_in_time_order() -> None:
    late = historic("late", DAY + timedelta(hours=10), ("2ad", 1))
    first = historic("first", DAY + timedelta(hours=8), ("2ad", 1), patient="p2")
    at_end = historic("end", DAY + timedelta(days=1), ("2ad", 1))
    same = historic("same", DAY + timedelta(hours=10), ("2ak", 1), hpr="h2")
    history = MemoryHistory(late, first, at_end, same)
    window = (DAY, DAY + timedelta(days=1))
    assert history.practitioner_bills_between("h1", *window) == [first, late]
    assert history.practitioner_bills_between("h2", *window) == [same]
    assert history.patient_bills_between("p1", *window) == [late, same]  # ties keep their order
    from_ten = (DAY + timedelta(hours=10), DAY + timedelta(days=2))
    assert history.patient_bills_between("p1", *from_ten) == [late, same, at_end]
    assert history.patient_bills_between("p1", DAY, DAY + timedelta(hours=10)) == []
    assert history.patient_bills_between("nobody", *window) == []


def test_code_count_sums_antall_of_lower_cased_codes_in_the_window() -> None:
    history = MemoryHistory(
        historic("a", DAY, ("K02A", 2), ("2ad", 1), ("k02a", 1)),
        historic("b", DAY + timedelta(days=1), ("k02a", 5)),
        historic("c", DAY, ("k02a", 7), patient="p2"),
        historic("d", DAY, ("ÅB", 1)),
    )
    window = (DAY, DAY + timedelta(days=1))
    assert history.patient_code_count("p1", frozenset({"k02a"}), *window) == 3
    assert history.patient_code_count("p1", frozenset({"k02a", "2ad"}), *window) == 4
    assert history.patient_code_count("p1", frozenset({"k02a"}), DAY, DAY + timedelta(days=2)) == 8
    assert history.patient_code_count("p1", frozenset({"K02A"}), *window) == 0  # codes: lower case
    assert history.patient_code_count("p1", frozenset(), *window) == 0
    # As SQLite's lower(): ASCII letters only.
    assert history.patient_code_count("p1", frozenset({"Åb"}), *window) == 1
    assert history.patient_code_count("p1", frozenset({"åb"}), *window) == 0


def test_approved_bill_by_sender_and_guid_and_queries_are_counted() -> None:
    stored = StoredBill("g1", "41", Decimal("100.00"), (("2ad", Decimal("100.00"), 1),), False)
    history = MemoryHistory(approved={("8141253", "g1"): stored})
    assert history.approved_bill("8141253", "g1") == stored
    assert history.approved_bill("999", "g1") is None
    assert history.approved_bill("8141253", "g2") is None
    history.patient_bills_between("p1", DAY, DAY)
    assert history.calls == {"approved_bill": 3, "patient_bills_between": 1}


def test_context_makes_a_consistent_claim_with_an_empty_history_by_default() -> None:
    bills = [
        enkeltregning(
            (Takst("2ad", Decimal("15.00"), 2), Takst("2cd", Decimal("100.00"), 1)),
            guid=f"g{i}",
            regning_nr=str(i),
            dato_tid=DAY,
            patient="p1",
        )
        for i in range(2)
    ]
    assert bills[0].behandling.sum_refusjon == Decimal("130.00")
    ctx = context(*bills, head=msghead("8141253", DAY), sender_her="8141253", received_at=DAY)
    assert ctx.krav.regninger == tuple(bills)
    assert (ctx.krav.antall_regninger, ctx.krav.sum_krav_samlet) == (2, Decimal("260.00"))
    assert ctx.head.sender.her_id == "8141253"
    assert isinstance(ctx.history, MemoryHistory)
    assert ctx.history.patient_bills_between("p1", DAY, DAY + timedelta(days=1)) == []


# --- the same bills through the pipeline into the real store ----------------------------------


def _send(pipeline: Pipeline, head: MsgHead, krav: BehandlerKrav, seed: int) -> None:
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(seed))
    pipeline.handle(raw, source="spool", source_ref=f"ref-{seed}", source_name=f"{seed}.msg")


def test_memory_history_answers_as_the_store_for_the_same_bills(
    make_pipeline: Callable[..., Pipeline], store: Store
) -> None:
    pipeline = make_pipeline()
    patient = Ident(make_fnr(random.Random(1), date(1980, 5, 17), female=True), "FNR")
    sent: list[tuple[MsgHead, Enkeltregning]] = []
    for seed in range(3):
        head, krav = make_claim(
            rng=random.Random(seed),
            practitioner="lege",
            bills=3,
            sender=default_sender(),
            receiver=default_receiver(),
            start=DAY + timedelta(days=seed, hours=8),
        )
        # The first bill of each message is for one shared (adult) patient, without fritak.
        first = krav.regninger[0]
        shared = dataclasses.replace(
            first,
            patient=patient,
            behandling=dataclasses.replace(first.behandling, kode_egenandel=None),
        )
        bills = [shared, *krav.regninger[1:]]
        _send(pipeline, head, dataclasses.replace(krav, regninger=tuple(bills)), seed)
        sent += [(head, b) for b in bills]
    credited = sent[3][1]  # the shared patient's bill of the second message
    head, _ = make_claim(
        rng=random.Random(9),
        practitioner="lege",
        bills=1,
        sender=default_sender(),
        receiver=default_receiver(),
        start=DAY + timedelta(days=4),
    )
    _send(pipeline, head, behandlerkrav(dataclasses.replace(credited, kreditering=True)), 9)
    assert store.messages.counts() == {"accepted": 4, "pending_replies": 8}

    history = MemoryHistory(
        *(
            HistoricBill(
                b.guid,
                b.regning_nr,
                h.sender.her_id or "",
                practitioner_id(h),
                b.patient.id,
                b.dato_tid,
                tuple((t.kode, t.antall) for t in b.behandling.takster),
            )
            for h, b in sent
            if b is not credited
        ),
        approved={
            (h.sender.her_id or "", b.guid): StoredBill(
                b.guid,
                b.regning_nr,
                b.behandling.sum_refusjon,
                tuple(sorted((t.kode, t.verdi, t.antall) for t in b.behandling.takster)),
                b is credited,
            )
            for h, b in sent
        },
    )
    windows = [
        (DAY, DAY + timedelta(days=7)),
        (DAY + timedelta(days=1), DAY + timedelta(days=2)),
        (sent[1][1].dato_tid, sent[5][1].dato_tid),  # [start, end) at bill times
    ]
    codes = {t.kode.lower() for _, b in sent for t in b.behandling.takster}
    code_sets = [frozenset(codes), frozenset(sorted(codes)[:2]), frozenset({"zz"}), frozenset()]
    practitioners = {practitioner_id(h) for h, _ in sent}
    assert len({b.patient.id for _, b in sent}) == 7
    for start, end in windows:
        for hpr in practitioners:
            assert history.practitioner_bills_between(
                hpr, start, end
            ) == store.history.practitioner_bills_between(hpr, start, end)
        for _, b in sent:
            assert history.patient_bills_between(
                b.patient.id, start, end
            ) == store.history.patient_bills_between(b.patient.id, start, end)
            for chosen in code_sets:
                assert history.patient_code_count(
                    b.patient.id, chosen, start, end
                ) == store.history.patient_code_count(b.patient.id, chosen, start, end)
    # Not trivially equal: the shared patient's live bills, the credited one left out.
    shared_bills = store.history.patient_bills_between(patient.id, *windows[0])
    assert [b.guid for b in shared_bills] == [sent[0][1].guid, sent[6][1].guid]
    assert store.history.patient_code_count(patient.id, frozenset(codes), *windows[0]) > 0
    for h, b in sent:
        sender = h.sender.her_id or ""
        assert history.approved_bill(sender, b.guid) == store.history.approved_bill(sender, b.guid)
        assert history.approved_bill("999", b.guid) is None
        assert store.history.approved_bill("999", b.guid) is None
    stored_credited = store.history.approved_bill(sent[3][0].sender.her_id or "", credited.guid)
    assert stored_credited is not None and stored_credited.credited
