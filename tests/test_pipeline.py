"""The pipeline as a whole, in-process: replies, duplicates, credits, addressing, storage."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree
from structlog.testing import capture_logs

from gateway.claims.model import BehandlerKrav, MsgHead
from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.namespaces import APPREC_NS, EB_NS
from gateway.pipeline import STAGES, Pipeline
from gateway.receipts.apprec import read_apprec
from gateway.receipts.decode import decode_reply
from gateway.records import Outcome
from gateway.rules.codes import DEFAULT_CODE_SYSTEM, shipped_code_list
from gateway.security import cms_signed
from gateway.security.certificates import load_certificate_file
from gateway.store import Store
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import Route, ebxml_message, open_reply

AR = {"ar": APPREC_NS}


def claim(seed: int, bills: int = 2) -> tuple[MsgHead, BehandlerKrav]:
    return make_claim(
        rng=random.Random(seed),
        practitioner="lege",
        bills=bills,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 8, 30),
    )


def as_message(head: MsgHead, krav: BehandlerKrav, seed: int, **kwargs: object) -> bytes:
    return ebxml_message(
        msghead_with_bkm(head, krav), rng=random.Random(seed), **kwargs  # type: ignore[arg-type]
    )


def apprec_of(body: bytes) -> etree._Element:
    package = mime.unwrap(body)
    (part,) = package.attachments
    return read_apprec(part.body)


def handle(pipeline: Pipeline, raw: bytes, ref: str) -> tuple[Outcome, list[bytes]]:
    before = {r.id for r in pipeline.store.outbox.pending_replies()}
    result = pipeline.handle(raw, source="spool", source_ref=ref, source_name=f"{ref}.msg")
    bodies = [r.body for r in pipeline.store.outbox.pending_replies() if r.id not in before]
    return result.outcome, bodies


def test_accepted_claim_gets_ack_and_signed_apprec_referring_to_it(
    make_pipeline: Callable[..., Pipeline], credentials: tuple[Path, Path]
) -> None:
    pipeline = make_pipeline()
    head, krav = claim(1)
    raw = as_message(head, krav, 1)
    outcome, (ack, apprec_mail) = handle(pipeline, raw, "r1")
    assert outcome is Outcome.ACCEPTED
    incoming = parse_envelope(mime.unwrap(raw).envelope.body)

    ack_env = parse_envelope(mime.unwrap(ack).envelope.body)
    assert ack_env.header.action == "Acknowledgment"
    assert ack_env.acknowledgment_ref == incoming.header.message_id

    reply = mime.unwrap(apprec_mail)
    reply_env = parse_envelope(reply.envelope.body)
    assert (reply_env.header.service, reply_env.header.action) == ("BehandlerKrav", "Svarmelding")
    assert reply_env.header.ref_to_message_id == incoming.header.message_id
    assert reply_env.header.to_party.id_of("HER") == "8141253"
    assert reply_env.header.from_party.id_of("HER") == "79768"
    assert reply_env.header.cpa_id == incoming.header.cpa_id
    assert reply_env.header.conversation_id == incoming.header.conversation_id

    # The bare AppRec, its integrity the signed envelope's cid: reference over the part.
    assert [p.content_type for p in reply.attachments] == ["application/xml"]
    opened = open_reply(apprec_mail, load_certificate_file(credentials[1]))
    assert opened.msghead is None
    apprec = opened.apprec
    assert apprec is not None and apprec.tag == f"{{{APPREC_NS}}}AppRec"
    assert apprec.find("ar:Status", AR).get("V") == "1"  # type: ignore[union-attr]
    assert apprec.findtext("ar:OriginalMsgId/ar:Id", namespaces=AR) == head.msg_id


def test_partial_rejection_gives_status_3_with_one_error_per_bill(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    head, krav = claim(2, bills=3)
    future = krav.regninger[1]
    bills = list(krav.regninger)
    bills[1] = dataclasses.replace(future, dato_tid=datetime(2027, 1, 1, 9, 0))
    krav = dataclasses.replace(krav, regninger=tuple(bills))
    outcome, bodies = handle(make_pipeline(), as_message(head, krav, 2), "r2")
    assert outcome is Outcome.PARTIALLY_ACCEPTED
    apprec = apprec_of(bodies[-1])
    assert apprec.find("ar:Status", AR).get("V") == "3"  # type: ignore[union-attr]
    # One Error per finding of the one rejected bill, each complete: S, a numeric V, DN, OT.
    errors = apprec.findall("ar:Error", AR)
    assert errors[0].get("V") == "766"
    assert "frem i tid" in (errors[0].get("DN") or "")
    for error in errors:
        assert error.get("OT") == future.regning_nr
        assert error.get("S") == DEFAULT_CODE_SYSTEM
        assert (error.get("V") or "").isdigit() and error.get("DN")


def test_same_message_again_gets_the_identical_stored_replies(
    make_pipeline: Callable[..., Pipeline], store: Store
) -> None:
    pipeline = make_pipeline()
    head, krav = claim(3)
    raw = as_message(head, krav, 3)
    _, first = handle(pipeline, raw, "r3a")
    outcome, again = handle(pipeline, raw, "r3b")
    assert outcome is Outcome.DUPLICATE
    assert again == first
    assert store.engine.rows("SELECT COUNT(*) FROM bills") == [(len(krav.regninger),)]
    rows = store.engine.rows("SELECT outcome, raw FROM received ORDER BY id")
    assert [r[0] for r in rows] == ["accepted", "duplicate"]
    assert rows[1][1] == raw  # the original bytes of every intake are kept


def test_a_duplicates_reply_files_are_named_after_the_file_that_was_dropped(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    pipeline = make_pipeline()
    head, krav = claim(5)
    raw = as_message(head, krav, 5)
    first = pipeline.handle(raw, source="spool", source_ref="a", source_name="monday.msg")
    before = {r.id for r in pipeline.store.outbox.pending_replies()}
    again = pipeline.handle(raw, source="spool", source_ref="b", source_name="tuesday.msg")
    assert again.outcome is Outcome.DUPLICATE and again.replies == first.replies
    names = [r.filename for r in pipeline.store.outbox.pending_replies() if r.id not in before]
    assert [n.split(".")[:2] for n in names] == [["tuesday", kind] for kind in again.replies]
    assert all(n.endswith(".eml") for n in names)


def test_same_msghead_in_a_new_ebxml_message_is_acked_anew_and_answered_from_store(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    pipeline = make_pipeline()
    head, krav = claim(4)
    _, first = handle(pipeline, as_message(head, krav, 4), "r4a")
    outcome, again = handle(pipeline, as_message(head, krav, 99), "r4b")
    assert outcome is Outcome.DUPLICATE
    assert again[-1] == first[-1]  # the stored AppRec, byte for byte
    new_ack = parse_envelope(mime.unwrap(again[0]).envelope.body)
    assert new_ack.header.action == "Acknowledgment"
    assert again[0] != first[0]


def test_an_empty_file_is_answered_as_empty_with_the_mime_error_code(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    pipeline = make_pipeline()
    said = {}
    for ref, raw in (("empty", b""), ("text", b"no headers here")):
        before = {r.id for r in pipeline.store.outbox.pending_replies()}
        result = pipeline.handle(raw, source="spool", source_ref=ref, source_name=f"{ref}.msg")
        assert result.outcome is Outcome.EBXML_ERROR
        (reply,) = [r for r in pipeline.store.outbox.pending_replies() if r.id not in before]
        (said[ref],) = decode_reply(reply.body).said
    assert said["empty"].kind == "message_error" and said["empty"].code == said["text"].code
    assert "Meldingen er tom" in said["empty"].text and "MIME-hoder" not in said["empty"].text
    assert "ingen MIME-hoder" in said["text"].text


def test_reused_ebxml_message_id_with_other_content_is_a_message_error(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    pipeline = make_pipeline()
    head, krav = claim(5)
    other_head, other_krav = claim(6)
    handle(pipeline, as_message(head, krav, 5, message_id="fixed-id"), "r5a")
    outcome, (error,) = handle(
        pipeline, as_message(other_head, other_krav, 6, message_id="fixed-id"), "r5b"
    )
    assert outcome is Outcome.EBXML_ERROR
    envelope = etree.fromstring(mime.unwrap(error).envelope.body)
    (eb_error,) = envelope.iter(f"{{{EB_NS}}}Error")
    assert eb_error.get(f"{{{EB_NS}}}errorCode") == "Inconsistent"


def test_message_error_is_not_remembered_so_a_corrected_retry_is_processed(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    pipeline = make_pipeline()
    head, krav = claim(7)
    payload = msghead_with_bkm(head, krav)
    wrong = ebxml_message(
        payload, rng=random.Random(7), message_id="retry-1", route=Route(action="Feil")
    )
    right = ebxml_message(payload, rng=random.Random(7), message_id="retry-1")
    assert handle(pipeline, wrong, "r7a")[0] is Outcome.EBXML_ERROR
    assert handle(pipeline, right, "r7b")[0] is Outcome.ACCEPTED


def test_credit_then_corrected_bill_with_the_same_guid(
    make_pipeline: Callable[..., Pipeline], store: Store
) -> None:
    pipeline = make_pipeline()
    head, krav = claim(8, bills=1)
    assert handle(pipeline, as_message(head, krav, 8), "r8a")[0] is Outcome.ACCEPTED

    original = krav.regninger[0]
    credit = dataclasses.replace(original, kreditering=True)
    credit_krav = dataclasses.replace(krav, regninger=(credit,))
    credit_head = dataclasses.replace(head, msg_id="credit-8")
    outcome, bodies = handle(pipeline, as_message(credit_head, credit_krav, 80), "r8b")
    assert outcome is Outcome.ACCEPTED

    again_head = dataclasses.replace(head, msg_id="again-8")
    assert handle(pipeline, as_message(again_head, krav, 81), "r8c")[0] is Outcome.ACCEPTED
    twice = dataclasses.replace(head, msg_id="twice-8")
    outcome, bodies = handle(pipeline, as_message(twice, krav, 82), "r8d")
    assert outcome is Outcome.REJECTED
    duplikat = shipped_code_list().merknad("DUPLIKAT").value
    assert apprec_of(bodies[-1]).find("ar:Error", AR).get("V") == duplikat  # type: ignore[union-attr]
    live = store.engine.rows(
        "SELECT COUNT(*) FROM bills WHERE status='godkjent' AND kreditering=0 "
        "AND credited_by IS NULL"
    )
    assert live == [(1,)]


def test_bare_msghead_gets_a_bare_apprec_with_a_detached_signature(
    make_pipeline: Callable[..., Pipeline], credentials: tuple[Path, Path]
) -> None:
    head, krav = claim(9)
    pipeline = make_pipeline()
    outcome, (reply, signature) = handle(pipeline, msghead_with_bkm(head, krav), "r9")
    assert outcome is Outcome.ACCEPTED
    files = [r.filename for r in pipeline.store.outbox.pending_replies()]
    assert files[-1] == files[-2] + cms_signed.SIGNATURE_SUFFIX
    verified = cms_signed.verify(reply, signature, load_certificate_file(credentials[1]))
    assert verified.pinned
    apprec = read_apprec(reply)
    assert apprec.tag == f"{{{APPREC_NS}}}AppRec"  # bare, no MsgHead around it
    assert apprec.find("ar:Status", AR).get("V") == "1"  # type: ignore[union-attr]
    assert apprec.findtext("ar:OriginalMsgId/ar:Id", namespaces=AR) == head.msg_id


def test_claim_for_another_receiver_is_rejected_with_e21(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    head, krav = make_claim(
        rng=random.Random(10),
        practitioner="psykolog",
        bills=1,
        sender=default_sender(),
        receiver=default_receiver("12345"),
        start=datetime(2026, 10, 5, 8, 30),
    )
    outcome, bodies = handle(make_pipeline(), as_message(head, krav, 10), "r10")
    assert outcome is Outcome.REJECTED
    error = apprec_of(bodies[-1]).find("ar:Error", AR)
    assert error is not None and error.get("V") == "E21"
    assert "12345" in (error.get("OT") or "")


def test_logs_name_no_national_identity_number(make_pipeline: Callable[..., Pipeline]) -> None:
    head, krav = claim(11)
    bad = dataclasses.replace(krav, sum_krav_samlet=krav.sum_krav_samlet + 1)
    with capture_logs() as logs:
        handle(make_pipeline(), as_message(head, bad, 11), "r11")
        handle(make_pipeline(), msghead_with_bkm(head, krav)[:-40], "r12")
    text = repr(logs)
    for bill in krav.regninger:
        assert bill.patient.id not in text


def test_received_time_is_stored_in_utc(
    make_pipeline: Callable[..., Pipeline], store: Store
) -> None:
    now = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    head, krav = claim(13)
    handle(make_pipeline(now), as_message(head, krav, 13), "r13")
    ((received_at,),) = store.engine.rows("SELECT received_at FROM received")
    assert received_at.startswith("2026-11-23T23:30:00")


def _codes(body: bytes) -> list[str | None]:
    return [e.get("V") for e in apprec_of(body).findall("ar:Error", AR)]


def test_a_schema_invalid_claim_sent_again_is_answered_from_the_store(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    """Invalid, but its MsgHead is readable: the same claim in a new ebXML message is a duplicate
    (its stored T02 AppRec again, a new acknowledgment), not a second T02 decision."""
    pipeline = make_pipeline()
    head, krav = claim(14)
    invalid = msghead_with_bkm(head, krav).replace(b"<Antall>", b"<Antall>x", 1)
    outcome, first = handle(pipeline, ebxml_message(invalid, rng=random.Random(14)), "r14a")
    assert outcome is Outcome.REJECTED
    assert _codes(first[-1]) == ["T02"]
    outcome, again = handle(pipeline, ebxml_message(invalid, rng=random.Random(15)), "r14b")
    assert outcome is Outcome.DUPLICATE
    assert again[-1] == first[-1]
    assert again[0] != first[0]  # acknowledged anew


def test_a_schema_invalid_claim_reusing_a_known_msgid_is_e10(
    make_pipeline: Callable[..., Pipeline], store: Store
) -> None:
    pipeline = make_pipeline()
    head, krav = claim(16)
    assert handle(pipeline, as_message(head, krav, 16), "r16a")[0] is Outcome.ACCEPTED
    _, other_krav = claim(17)
    invalid = msghead_with_bkm(head, other_krav).replace(b"<Antall>", b"<Antall>x", 1)
    outcome, replies = handle(pipeline, ebxml_message(invalid, rng=random.Random(17)), "r16b")
    assert outcome is Outcome.REJECTED
    assert _codes(replies[-1]) == ["E10"]
    msg_ids = [r[0] for r in store.engine.rows("SELECT msg_id FROM messages ORDER BY id")]
    assert msg_ids == [head.msg_id, None]  # the MsgId stays the first message's


def test_the_stages_run_in_the_order_stages_declares(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    ran: list[str] = []

    class Run:
        def finished(self) -> None:
            pass

    @contextmanager
    def observe(name: str) -> Iterator[Run]:
        ran.append(name)
        yield Run()

    pipeline = make_pipeline()
    pipeline.observe = observe
    head, krav = claim(18)
    assert handle(pipeline, as_message(head, krav, 18), "r18a")[0] is Outcome.ACCEPTED
    assert tuple(ran) == STAGES
    ran.clear()
    invalid = msghead_with_bkm(head, krav).replace(b"<Antall>", b"<Antall>x", 1)
    handle(pipeline, ebxml_message(invalid, rng=random.Random(19)), "r18b")
    # Schema-invalid with a readable MsgHead: the MsgId check runs before T02 is answered.
    assert ran[-2:] == ["validate", "check_msghead_duplicate"]
