"""``gateway outbox …`` and ``gateway messages …`` on a real store filled by the pipeline."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.pipeline import Pipeline
from gateway.records import ReplyRecord
from gateway.store import Store
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message
from tests.conftest import database_table

NATIONAL_ID = re.compile(r"(?<!\d)\d{11}(?!\d)")


def gateway(*argv: str) -> int:
    """The commands as ``gateway`` runs them."""
    return main(list(argv))


@pytest.fixture
def config(tmp_path: Path, store: Store, credentials: tuple[Path, Path]) -> Path:
    key, cert = credentials
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[identity]
name = "HELFO test"
her_id = "79768"
{database_table(store)}
[spool]
directory = "{tmp_path / 'spool'}"
[outbox]
directory = "{tmp_path / 'outbox'}"
[signing]
key_file = "{key}"
cert_file = "{cert}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def received(make_pipeline: Callable[..., Pipeline]) -> tuple[int, list[str]]:
    """One claim handled by the pipeline: (received id, the patients' national ids)."""
    head, krav = make_claim(
        rng=random.Random(7),
        practitioner="psykolog",
        bills=2,
        sender=default_sender("8100001"),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 9, 0),
    )
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(7))
    result = make_pipeline().handle(raw, source="spool", source_ref="c1", source_name="c1.msg")
    return result.received_id, [b.patient.id for b in krav.regninger]


def out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_list_show_and_body(
    config: Path,
    store: Store,
    received: tuple[int, list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    received_id, patients = received
    replies = store.messages.replies_of(received_id)
    kinds = {r.kind: r for r in replies}
    assert set(kinds) == {"acknowledgment", "apprec"}
    c = str(config)

    assert gateway("outbox", "list", "--config", c) == 0
    listing = out(capsys)
    assert "2 reply(ies)" in listing and "apprec" in listing and "pending" in listing
    assert gateway("outbox", "list", "--kind", "apprec", "--config", c) == 0
    assert "1 reply(ies)" in out(capsys)
    assert gateway("outbox", "list", "--state", "dead", "--config", c) == 0
    assert "0 reply(ies)" in out(capsys)

    apprec = kinds["apprec"]
    assert gateway("outbox", "show", str(apprec.id), "--config", c) == 0
    shown = out(capsys)
    assert f"ebXML MessageId:   {apprec.ebxml_message_id}" in shown
    assert "ack state:         awaiting" in shown
    assert "Content-Type" not in shown, "no body without --body"
    assert gateway("outbox", "show", str(apprec.id), "--body", "--config", c) == 0
    assert out(capsys).encode() == store.outbox.reply_body(apprec.id)
    assert gateway("outbox", "show", "9999", "--config", c) == 1

    for text in (listing, shown):
        assert not any(p in text for p in patients)


def test_dead_requeue_discard(
    config: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = store.outbox.queue_replies(
        [ReplyRecord("payout_decision", "HER:8100001", f"p{n}.xml", b"<x/>") for n in range(4)]
    )
    for reply_id in ids[:3]:
        store.outbox.mark_dead(reply_id, "SMTP 550 5.1.1 mailbox unavailable")
    c = str(config)

    assert gateway("outbox", "dead", "--config", c) == 0
    text = out(capsys)
    assert "3 dead letter(s)" in text and "550 5.1.1 mailbox unavailable" in text

    requeue = ("outbox", "requeue", str(ids[0]), str(ids[3]), "--by", "kari", "--config", c)
    assert gateway(*requeue) == 1
    text = out(capsys)
    assert f"requeued {ids[0]}" in text and f"not a dead letter (left alone): {ids[3]}" in text
    summary = store.outbox.reply(ids[0])
    assert summary is not None and summary.state == "pending"
    assert (summary.last_error or "").startswith("requeued by kari")

    assert gateway("outbox", "discard", str(ids[1]), "--reason", "sent by hand", "--config", c) == 0
    discarded = store.outbox.reply(ids[1])
    assert discarded is not None and discarded.state == "discarded"
    assert "sent by hand" in (discarded.last_error or "")

    assert gateway("outbox", "requeue", "--all-dead", "--config", c) == 0
    assert [r.id for r in store.outbox.dead_letters()] == []
    assert store.outbox.summary().states == {"pending": 3, "discarded": 1}
    out(capsys)
    assert gateway("outbox", "requeue", "--config", c) == 2  # neither ids nor --all-dead


def test_awaiting_ack_lists_what_is_unacknowledged(
    config: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = store.outbox.queue_replies(
        [
            ReplyRecord("apprec", "HER:1", "a.eml", b"a", "m-a@x", awaits_ack=True),
            ReplyRecord("apprec", "HER:1", "b.eml", b"b", "m-b@x", awaits_ack=True),
        ]
    )
    store.outbox.record_delivery([a, b])
    store.acks.record_signal("m-b@x", "acknowledgment", None)
    c = str(config)
    assert gateway("outbox", "awaiting-ack", "--config", c) == 0
    text = out(capsys)
    assert "m-a@x" in text and "m-b@x" not in text and "1 awaiting" in text
    past = datetime.now().astimezone() - timedelta(hours=1)
    store.acks.plan_resend(a, past, past)
    store.acks.expire()
    assert gateway("outbox", "awaiting-ack", "--expired", "--config", c) == 0
    assert "m-a@x" in out(capsys)


def test_messages_list_and_show_without_national_ids(
    config: Path,
    store: Store,
    received: tuple[int, list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    received_id, patients = received
    c = str(config)
    assert gateway("messages", "list", "--config", c) == 0
    text = out(capsys)
    assert "1 message(s)" in text and "accepted" in text
    assert gateway("messages", "list", "--outcome", "rejected", "--config", c) == 0
    assert "0 message(s)" in out(capsys)
    assert gateway("messages", "list", "--since", "2999-01-01", "--config", c) == 0
    assert "0 message(s)" in out(capsys)

    assert gateway("messages", "show", str(received_id), "--config", c) == 0
    shown = out(capsys)
    assert "outcome:           accepted" in shown
    assert "bills:             2" in shown
    assert "apprec" in shown and "acknowledgment" in shown
    assert not any(p in shown for p in patients)
    assert not NATIONAL_ID.search(shown)
    assert gateway("messages", "show", "424242", "--config", c) == 1


def test_show_says_what_a_reply_says_and_decodes_it_on_request(
    config: Path,
    store: Store,
    received: tuple[int, list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    received_id, _ = received
    kinds = {r.kind: r for r in store.messages.replies_of(received_id)}
    incoming = store.messages.received_summary(received_id)
    assert incoming is not None
    c = str(config)
    assert gateway("outbox", "show", str(kinds["apprec"].id), "--config", c) == 0
    says = [line for line in out(capsys).splitlines() if line.startswith("says:")]
    assert says == [
        "says:              ebXML message, Action Svarmelding; AppRec status 1 (OK), "
        f"answering MsgId {incoming.msg_id}."
    ]
    assert gateway("outbox", "show", str(kinds["apprec"].id), "--decoded", "--config", c) == 0
    decoded = out(capsys)
    assert "--- apprec ---\n<AppRec " in decoded and "\n  <Status V=\"1\"" in decoded
    assert "--- envelope ---" in decoded and not NATIONAL_ID.search(decoded)

    assert gateway("messages", "show", str(received_id), "--config", c) == 0
    shown = out(capsys)
    assert f"says: ebXML Acknowledgment of {incoming.ebxml_message_id}." in shown
    assert "says: ebXML message, Action Svarmelding; AppRec status 1 (OK)" in shown
    assert "<AppRec" not in shown
    assert gateway("messages", "show", str(received_id), "--decoded", "--config", c) == 0
    assert "<AppRec" in out(capsys)


def test_times_are_norwegian_with_their_offset_and_since_reads_them_so(
    config: Path, received: tuple[int, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    received_id, _ = received  # at FIXED_NOW, 12:00 UTC on 23 November: 13:00 in Oslo (CET)
    c = str(config)
    assert gateway("messages", "show", str(received_id), "--config", c) == 0
    assert "received:          2026-11-23T13:00:00+01:00\n" in out(capsys)
    for since, count in (
        ("2026-11-23", 1),  # from midnight in Oslo
        ("2026-11-23T13:00", 1),  # Norwegian time without an offset
        ("2026-11-23T13:00:01", 0),
        ("2026-11-23T12:00:00+00:00", 1),
        ("2026-11-23T12:00:01Z", 0),
    ):
        assert gateway("messages", "list", "--since", since, "--config", c) == 0
        listing = out(capsys)
        assert f"{count} message(s)" in listing, since
        if count:
            assert f"{received_id:>7}  2026-11-23T13:00:00+01:00  accepted" in listing
    with pytest.raises(SystemExit):
        gateway("messages", "list", "--since", "23.11.2026", "--config", c)
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_a_duplicate_is_listed_with_its_sender(
    config: Path,
    make_pipeline: Callable[..., Pipeline],
    capsys: pytest.CaptureFixture[str],
) -> None:
    head, krav = make_claim(
        rng=random.Random(8),
        practitioner="psykolog",
        bills=1,
        sender=default_sender("8100002"),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 9, 0),
    )
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(8))
    pipeline = make_pipeline()
    for ref in ("d1", "d2"):
        pipeline.handle(raw, source="spool", source_ref=ref, source_name=f"{ref}.msg")
    assert gateway("messages", "list", "--config", str(config)) == 0
    lines = [line for line in out(capsys).splitlines() if "from" in line]
    assert [line.split()[2] for line in lines] == ["accepted", "duplicate"]
    senders = {line.split("from")[1].split()[0] for line in lines}
    assert senders != {"-"} and len(senders) == 1, lines
