"""Sending payout decisions through the outbox: ebXML-wrapped, signed, schema-valid, queued
exactly once, and crash-safe at every step of a run."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.claims.model import Enkeltregning
from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import EbxmlMessage
from gateway.outbox.files import FileOutbox
from gateway.payout import ledger, sending
from gateway.payout.decision import VEDTAK_NS
from gateway.payout.payees import hold_for
from gateway.payout.recipients import Recipients
from gateway.payout.sending import PayoutDeps
from gateway.pipeline import Pipeline
from gateway.practices.loading import register_from_file
from gateway.practices.model import PracticeRegister
from gateway.security.xmldsig import Signer, verify
from gateway.store import Store
from gateway.store.engine import Engine
from gateway.testing.claims import (
    Practitioner,
    default_receiver,
    default_sender,
    make_claim,
    msghead_with_bkm,
)
from gateway.testing.messages import ebxml_message
from gateway.validation.catalog import SchemaCatalog
from tests.conftest import FIXTURES_DIR, IDENTITY

REGISTRY = FIXTURES_DIR / "practices" / "practices.csv"
PAYER_ACCOUNT = "86011117947"
NS = {"v": VEDTAK_NS}
LAB = "8200010"  # a hospital laboratory owned by the RHF 8200001 (fixtures/practices)
RHF = "8200001"
HELD = "8141253"  # in the register without an account

#: sender HER -> (practitioner kind, bills) sent by ``fill``
SENDERS: dict[str, tuple[Practitioner, int]] = {
    "8100001": ("psykolog", 3),
    "8100002": ("lege", 2),
    LAB: ("lab", 2),
    HELD: ("psykolog", 1),
}


def send_claim(
    pipeline: Pipeline, her: str, kind: Practitioner, bills: int, seed: int, day: int = 5
) -> list[Enkeltregning]:
    """Send one claim through the real pipeline; returns its bills."""
    head, krav = make_claim(
        rng=random.Random(seed),
        practitioner=kind,
        bills=bills,
        sender=default_sender(her),
        receiver=default_receiver(),
        start=datetime(2026, 10, day, 9, 0),
    )
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(seed))
    pipeline.handle(raw, source="spool", source_ref=f"c{seed}", source_name=f"c{seed}.msg")
    return list(krav.regninger)


@dataclass
class Filled:
    pipeline: Pipeline
    bills: dict[str, list[Enkeltregning]]  # sender HER -> the bills it sent


def fill(make_pipeline: Callable[..., Pipeline], seed: int = 0) -> Filled:
    """Claims from every sender of ``SENDERS``, each registered with its practitioner type."""
    pipeline = make_pipeline(practitioners={her: kind for her, (kind, _) in SENDERS.items()})
    bills = {
        her: send_claim(pipeline, her, kind, count, seed * 100 + i, day=5 + i)
        for i, (her, (kind, count)) in enumerate(sorted(SENDERS.items()))
    }
    return Filled(pipeline, bills)


def make_deps(tmp_path: Path, signer: Signer, **changes: object) -> PayoutDeps:
    values: dict[str, object] = {
        "identity": IDENTITY,
        "signer": signer,
        "secret": b"payout-test-secret",
        "registry": Recipients(register_from_file(REGISTRY)),
        "decisions_directory": tmp_path / "outbox" / "payout",
        "payments_directory": tmp_path / "payments",
        "payer_account": PAYER_ACCOUNT,
        "payer_bic": "DNBANOKKXXX",
    }
    values.update(changes)
    return PayoutDeps(**values)  # type: ignore[arg-type]


@pytest.fixture
def deps(tmp_path: Path, signer: Signer) -> PayoutDeps:
    return make_deps(tmp_path, signer)


def record(store: Store, deps: PayoutDeps, key: str = "2026-11-23") -> ledger.RunResult:
    return ledger.run(store.engine, key, hold=hold_for(deps.registry))


def rows(db: Engine, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.rows(sql, params)]


def payout_replies(db: Engine) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "SELECT filename, received_id, state, ack_state, recipient, ebxml_message_id, body "
        "FROM replies WHERE kind = 'payout_decision' ORDER BY filename",
    )


def approved_by_sender(db: Engine) -> dict[str, int]:
    return {
        str(her): int(total)
        for her, total in rows(
            db,
            "SELECT b.sender_her, SUM(e.approved_ore) FROM bills b "
            "JOIN bill_status_effective e ON e.bill_id = b.id "
            "WHERE e.status = 'godkjent' AND b.kreditering = 0 GROUP BY b.sender_her",
        )
    }


def assert_each_bill_paid_once(db: Engine) -> None:
    twice = rows(
        db,
        "SELECT bill_id FROM payout_lines WHERE kind = 'payment' GROUP BY bill_id "
        "HAVING COUNT(*) > 1",
    )
    assert twice == []


def unwrap_decision(body: bytes) -> tuple[EbxmlMessage, bytes]:
    """(the parsed ebXML envelope, the decision payload) of a queued message."""
    package = mime.unwrap(body)
    message = parse_envelope(package.envelope.body)
    (reference,) = message.manifest
    part = package.part(reference.href)
    assert part is not None
    return message, part.body


# --- a run, queued ------------------------------------------------------------------------------


def test_a_run_queues_one_signed_ebxml_decision_per_payee(
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    deps: PayoutDeps,
    catalog: SchemaCatalog,
    signer: Signer,
) -> None:
    fill(make_pipeline)
    approved = approved_by_sender(store.engine)
    assert set(approved) == set(SENDERS)  # every bill of the fixture claims was approved
    result = record(store, deps)
    # The practice without an account is held: nothing of it is recorded, it stays owed.
    assert {x.receiver_her for x in result.held} == {HELD}
    assert {x.receiver_her for x in ledger.plan(store.engine)} == {HELD}

    outcome = sending.process_run(store.engine, result.run_id, deps)
    assert outcome.queued == 3
    by_payee = {d.receiver_her: d for d in outcome.decisions}
    assert set(by_payee) == {"8100001", "8100002", RHF}  # the lab's refunds go to its RHF
    assert by_payee[RHF].total_ore == approved[LAB]
    assert by_payee[RHF].account == "12030000003" and by_payee[RHF].kid == "82000011"
    assert by_payee["8100001"].total_ore == approved["8100001"]
    assert ledger.run_record(store.engine, result.run_id).state == "done"  # type: ignore[union-attr]

    replies = payout_replies(store.engine)
    assert [r[0] for r in replies] == [
        "payout-2026-11-23-8100001.eml",
        "payout-2026-11-23-8100002.eml",
        "payout-2026-11-23-8200001.eml",
    ]
    total = Decimal("0.00")
    for filename, received_id, state, ack, recipient, message_id, body in replies:
        assert (received_id, state, ack) == (None, "pending", "awaiting")
        message, payload = unwrap_decision(bytes(body))
        header = message.header
        assert message.ack_requested
        assert (header.service, header.action) == ("BehandlerKrav", "Utbetalingsvedtak")
        assert header.message_id == message_id and header.ref_to_message_id is None
        assert header.from_party.id_of("HER") == IDENTITY.her_id
        her = header.to_party.id_of("HER")
        assert her is not None
        assert filename == f"payout-2026-11-23-{her}.eml"
        assert recipient == ("post@fjordlegene.example" if her == "8100001" else f"HER:{her}")
        assert payload == by_payee[her].body  # the stored decision, byte for byte
        report = catalog.validate_bytes(payload)
        assert report.valid, report.summary()
        signed = verify(payload, signer.cert_pem)
        assert signed.findtext("v:Mottaker/v:Ident/v:Id", namespaces=NS) == her
        paid = Decimal(signed.findtext("v:Sum/v:Utbetalt", namespaces=NS) or "")
        assert paid * 100 == by_payee[her].total_ore
        total += paid
    recorded = rows(store.engine, "SELECT SUM(amount_ore) FROM payout_lines")[0][0]
    assert total * 100 == recorded == sum(v for k, v in approved.items() if k != HELD)

    # The decision copies are written too.
    copies = sorted(p.name for p in deps.decisions_directory.glob("*.xml"))
    assert copies == [f"2026-11-23-{her}.xml" for her in ("8100001", "8100002", RHF)]


def test_queueing_again_is_a_no_op_and_a_resend_repeats_the_same_decision(
    make_pipeline: Callable[..., Pipeline], store: Store, deps: PayoutDeps
) -> None:
    fill(make_pipeline)
    result = record(store, deps)
    first = sending.process_run(store.engine, result.run_id, deps)
    before = payout_replies(store.engine)
    again = sending.process_run(store.engine, result.run_id, deps)
    assert again.queued == 0 and again.decisions == first.decisions
    assert record(store, deps).created is False
    assert payout_replies(store.engine) == before

    assert sending.resend(store.engine, result.run_id, deps) == 3
    after = payout_replies(store.engine)
    assert len(after) == 6
    payloads: dict[str, set[bytes]] = {}
    message_ids = set()
    for _f, _r, _s, _a, _rc, message_id, body in after:
        message, payload = unwrap_decision(bytes(body))
        her = message.header.to_party.id_of("HER")
        payloads.setdefault(str(her), set()).add(payload)
        message_ids.add(message_id)
    assert len(message_ids) == 6  # a new ebXML MessageId per copy...
    assert all(len(p) == 1 for p in payloads.values())  # ...the very same decision


def test_the_file_outbox_delivers_the_queued_decisions(
    make_pipeline: Callable[..., Pipeline], store: Store, deps: PayoutDeps, tmp_path: Path
) -> None:
    fill(make_pipeline)
    sending.process_run(store.engine, record(store, deps).run_id, deps)
    outbox = FileOutbox(store, tmp_path / "outbox")
    assert outbox.flush() >= 3
    delivered = sorted(p.name for p in (tmp_path / "outbox").glob("payout-*.eml"))
    assert len(delivered) == 3
    assert all(r[2] == "delivered" for r in payout_replies(store.engine))
    for name in delivered:
        _m, payload = unwrap_decision((tmp_path / "outbox" / name).read_bytes())
        assert payload.startswith(b"<?xml")


# --- crashes at every step ------------------------------------------------------------------------


class PowerCut(Exception):
    pass


@pytest.mark.parametrize("point", ["before_send", "during_send", "after_send"])
def test_a_crash_then_restart_pays_and_queues_each_bill_once(
    point: str,
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    deps: PayoutDeps,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    fill(make_pipeline)
    result = record(store, deps)
    if point == "before_send":
        # Recorded, then the process dies before anything is queued.
        pass
    elif point == "during_send":
        real_queue = sending._queue
        calls = []

        def queue_then_die(*args: object, **kwargs: object) -> int:
            calls.append(1)
            if len(calls) == 2:
                raise PowerCut("in the middle of queueing")
            return real_queue(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(sending, "_queue", queue_then_die)
        with pytest.raises(PowerCut):
            sending.process_run(store.engine, result.run_id, deps)
        monkeypatch.undo()
        # One transaction: nothing of the half-queued run is left.
        assert payout_replies(store.engine) == []
        assert sending.stored_decisions(store.engine, result.run_id) == []
    else:
        # Queued and even delivered by the outbox, then the process dies before the files.
        monkeypatch.setattr(sending, "finish_run", _die)
        with pytest.raises(PowerCut):
            sending.process_run(store.engine, result.run_id, deps)
        monkeypatch.undo()
        FileOutbox(store, tmp_path / "outbox").flush()
        assert len(payout_replies(store.engine)) == 3
    state = ledger.run_record(store.engine, result.run_id).state  # type: ignore[union-attr]
    assert state == ("enqueued" if point == "after_send" else "recorded")

    # Restart: the scheduler's start (or `payout resend`) finishes what is missing.
    resumed = sending.resume(store.engine, deps)
    assert [r.run_id for r in resumed] == [result.run_id]
    assert sending.resume(store.engine, deps) == []
    replies = payout_replies(store.engine)
    assert Counter(str(r[0]) for r in replies) == {
        f"payout-2026-11-23-{her}.eml": 1 for her in ("8100001", "8100002", RHF)
    }
    assert_each_bill_paid_once(store.engine)
    # A later run pays nothing again; the held practice is still owed.
    later = record(store, deps, "2026-11-24")
    assert later.per_receiver == {} and {x.receiver_her for x in later.held} == {HELD}
    assert (deps.payments_directory / "2026-11-23.pain001.xml").is_file()


def _die(*_args: object, **_kwargs: object) -> None:
    raise PowerCut("after the send")


def test_a_payee_gets_its_account_and_is_paid_in_the_next_run(
    make_pipeline: Callable[..., Pipeline], store: Store, deps: PayoutDeps, tmp_path: Path
) -> None:
    fill(make_pipeline)
    first = record(store, deps)
    sending.process_run(store.engine, first.run_id, deps)
    owed = approved_by_sender(store.engine)[HELD]
    sample = register_from_file(REGISTRY)
    register = PracticeRegister.build(
        "with-account",
        [replace(p, account="16021200003") if p.her_id == HELD else p for p in sample],
    )
    with_account = make_deps(tmp_path, deps.signer, registry=Recipients(register))
    second = record(store, with_account, "2026-11-24")
    assert second.per_receiver == {HELD: owed} and second.held == ()
    outcome = sending.process_run(store.engine, second.run_id, with_account)
    assert [(d.receiver_her, d.total_ore, d.account) for d in outcome.decisions] == [
        (HELD, owed, "16021200003")
    ]
    assert_each_bill_paid_once(store.engine)
