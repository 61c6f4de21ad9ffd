"""``gateway retention``: old bytes move to archive files, durably, only when nothing needs them."""

from __future__ import annotations

import fcntl
import hashlib
import json
import random
import re
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.payout import ledger
from gateway.pipeline import Pipeline
from gateway.records import Outcome
from gateway.retention.archive import MANIFEST, ArchiveError
from gateway.retention.run import archive, restore, verify
from gateway.store import Store
from gateway.store.retention import ArchivedBytes
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message
from gateway.web.replies import readable_stored
from tests.conftest import database_table

NATIONAL_ID = re.compile(r"(?<!\d)\d{11}(?!\d)")
LATER = datetime.now(UTC) + timedelta(days=1)  # a cut-off after everything the tests store


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


def _claim_message() -> tuple[bytes, list[str]]:
    head, krav = make_claim(
        rng=random.Random(7),
        practitioner="psykolog",
        bills=2,
        sender=default_sender("8100001"),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 9, 0),
    )
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(7))
    return raw, [b.patient.id for b in krav.regninger]


@pytest.fixture
def received(make_pipeline: Callable[..., Pipeline]) -> tuple[int, list[str]]:
    """One claim handled by the pipeline: (received id, the patients' national ids)."""
    raw, ids = _claim_message()
    result = make_pipeline().handle(raw, source="spool", source_ref="c1", source_name="c1.msg")
    return result.received_id, ids


def _deliver_all(store: Store) -> None:
    """Every reply delivered and, where it awaited one, acknowledged."""
    with store.engine.transaction("test: delivered") as tx:
        tx.execute(
            "UPDATE replies SET state = 'delivered', delivered_at = created_at, sends = 1, "
            "ack_state = CASE WHEN ack_state = 'awaiting' THEN 'acknowledged' ELSE ack_state END"
        )


def _manual_control_done(store: Store) -> None:
    """The test claim's bills go to manual control; a case worker has looked at them."""
    with store.engine.transaction("test: manual control done") as tx:
        tx.execute("UPDATE bills SET manual = 0")


def _done(store: Store) -> None:
    """Replies delivered and acknowledged, manual control done, bills paid."""
    _deliver_all(store)
    _manual_control_done(store)
    ledger.run(store.engine, "2026-11-23")


def _raw(store: Store, received_id: int) -> bytes:
    found = store.engine.one("SELECT raw FROM received WHERE id = ?", (received_id,))
    assert found is not None
    return bytes(found[0])


def _bodies(store: Store, received_id: int) -> dict[int, bytes]:
    rows = store.engine.rows("SELECT id, body FROM replies WHERE received_id = ?", (received_id,))
    return {int(r[0]): bytes(r[1]) for r in rows}


def test_nothing_still_needed_is_archived(
    store: Store, received: tuple[int, list[str]], tmp_path: Path
) -> None:
    received_id, _ = received
    original = _raw(store, received_id)
    to = tmp_path / "archive"
    # Replies not yet delivered: the outbox needs their bodies.
    assert archive(store, before=LATER, directory=to).messages == 0
    # Delivered, but the bills wait for manual control: a case worker needs the message.
    _deliver_all(store)
    assert store.engine.one("SELECT COUNT(*) FROM bills WHERE manual = 1") == (2,)
    assert archive(store, before=LATER, directory=to).messages == 0
    # Looked at, but not paid yet: the payout has not settled them.
    _manual_control_done(store)
    unpaid = archive(store, before=LATER, directory=to)
    assert (unpaid.messages, unpaid.skipped_unsettled) == (0, 1)
    # A reply awaiting its acknowledgment again (a resend): still needed.
    ledger.run(store.engine, "2026-11-23")
    with store.engine.transaction("test: awaiting") as tx:
        tx.execute("UPDATE replies SET ack_state = 'awaiting' WHERE kind = 'apprec'")
    assert archive(store, before=LATER, directory=to).messages == 0
    # An acknowledgment in error: not given up on yet.
    with store.engine.transaction("test: error") as tx:
        tx.execute("UPDATE replies SET ack_state = 'error' WHERE kind = 'apprec'")
    assert archive(store, before=LATER, directory=to).messages == 0
    _deliver_all(store)
    with store.engine.transaction("test: acknowledged") as tx:
        tx.execute("UPDATE replies SET ack_state = 'acknowledged' WHERE kind = 'apprec'")
    # Newer than the cut-off: kept.
    assert archive(store, before=datetime(2020, 1, 1, tzinfo=UTC), directory=to).messages == 0
    assert not list(to.glob("*.tar.gz"))
    assert _raw(store, received_id) == original
    # Done with: archived.
    assert archive(store, before=LATER, directory=to).messages == 1
    assert _raw(store, received_id) == b""


def test_archive_keeps_hashes_and_locations_and_restores(
    store: Store, received: tuple[int, list[str]], tmp_path: Path
) -> None:
    received_id, _ = received
    _done(store)
    raw, bodies = _raw(store, received_id), _bodies(store, received_id)
    to = tmp_path / "archive"
    dry = archive(store, before=LATER, directory=to, dry_run=True)
    assert (dry.messages, dry.replies) == (1, len(bodies)) and not to.exists()
    result = archive(store, before=LATER, directory=to)
    assert (result.messages, result.replies) == (1, len(bodies))
    [path] = result.files
    assert path.stat().st_mode & 0o077 == 0  # health data: the owner's alone
    # The database keeps hashes, sizes and where the bytes are; not the bytes.
    assert set(_bodies(store, received_id).values()) == {b""}
    parts = store.retention.archived_parts(received_id)
    assert {(p.kind, p.row_id) for p in parts} == {("received", received_id)} | {
        ("reply", i) for i in bodies
    }
    assert {p.archive_file for p in parts} == {str(path)}
    summaries = {r.id: r.size for r in store.messages.replies_of(received_id)}
    assert summaries == {i: len(b) for i, b in bodies.items()}  # sizes as before
    with pytest.raises(ArchivedBytes, match="arkivert i"):
        store.messages.received_raw(received_id)
    # A late duplicate gets its replies again, read back from the archive (never b"").
    resent = store.intake.replies_for(received_id)
    assert [r.body for r in resent] == [bodies[i] for i in sorted(bodies)]
    for reply_id in bodies:  # the console says where the reply is
        shown = readable_stored(store.outbox.reply_body, reply_id)
        assert shown.summary == f"Arkivert i {path}" and shown.documents == ()
    # The file: every member, and a manifest of their hashes.
    with tarfile.open(path) as tar:
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
        member = tar.extractfile(f"received/{received_id}.eml")
        assert member is not None and member.read() == raw
    by_member = {m["member"]: m for m in manifest}
    assert by_member[f"received/{received_id}.eml"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert len(by_member) == 1 + len(bodies)
    assert verify(store) == []
    # Restored: the same bytes, back in the database.
    restore(store, received_id)
    assert _raw(store, received_id) == raw
    assert _bodies(store, received_id) == bodies
    assert store.retention.archived_parts(received_id) == []


def test_a_message_that_comes_again_after_archiving_gets_its_replies_again(
    store: Store, make_pipeline: Callable[..., Pipeline], tmp_path: Path
) -> None:
    pipeline = make_pipeline()
    raw, _ = _claim_message()
    first = pipeline.handle(raw, source="spool", source_ref="c1", source_name="c1.msg")
    _done(store)
    apprec = max(_bodies(store, first.received_id).items())[1]  # the last reply made
    assert archive(store, before=LATER, directory=tmp_path / "a").messages == 1
    pending_before = {r.id for r in store.outbox.pending_replies()}
    again = pipeline.handle(raw, source="spool", source_ref="c2", source_name="c2.msg")
    assert again.outcome is Outcome.DUPLICATE and again.replies == first.replies
    resent = [r for r in store.outbox.pending_replies() if r.id not in pending_before]
    assert resent and all(r.body for r in resent)  # never an empty body
    assert apprec in {r.body for r in resent}  # the stored answer, byte for byte


def test_a_crash_between_the_archive_and_the_database_loses_nothing(
    store: Store, received: tuple[int, list[str]], tmp_path: Path
) -> None:
    received_id, _ = received
    _done(store)
    raw, bodies = _raw(store, received_id), _bodies(store, received_id)
    to = tmp_path / "archive"

    def crash(path: Path) -> None:
        assert path.exists()
        raise KeyboardInterrupt("killed after the archive was written")

    with pytest.raises(KeyboardInterrupt):
        archive(store, before=LATER, directory=to, after_write=crash)
    # Everything still readable from the database; the file holds a copy.
    assert _raw(store, received_id) == raw
    assert _bodies(store, received_id) == bodies
    assert store.retention.archived_parts() == []
    # Running again finishes the job; the day's file has each member once.
    assert archive(store, before=LATER, directory=to).messages == 1
    again = archive(store, before=LATER, directory=to)
    assert (again.messages, again.files) == (0, [])
    [path] = list(to.glob("*.tar.gz"))
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert len(names) == len(set(names)) == 2 + len(bodies)
    assert not list(to.glob("*.tmp"))  # no temp file left
    assert verify(store) == []


def test_a_damaged_archive_is_found_and_nothing_is_restored_from_it(
    store: Store, received: tuple[int, list[str]], tmp_path: Path
) -> None:
    received_id, _ = received
    _done(store)
    [path] = archive(store, before=LATER, directory=tmp_path / "a").files
    path.write_bytes(path.read_bytes()[:-200])
    assert {p.row_id for p, _ in verify(store)} >= {received_id}
    with pytest.raises(ArchiveError):
        restore(store, received_id)
    assert _raw(store, received_id) == b""
    assert len(store.retention.archived_parts(received_id)) > 1
    with pytest.raises(ArchivedBytes, match="arkivert i"):
        store.intake.replies_for(received_id)  # a late duplicate waits: never sent b""


def test_the_commands_never_print_a_national_id(
    config: Path,
    store: Store,
    received: tuple[int, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    received_id, patients = received
    raw = _raw(store, received_id)
    _done(store)
    with store.engine.transaction("test: old") as tx:
        tx.execute("UPDATE received SET received_at = '2026-10-05T07:00:00.000000+00:00'")
    to = tmp_path / "archive"
    c = ["--config", str(config)]
    assert main(["retention", "show", *c]) == 0
    assert main(["retention", "archive", "--older-than", "30", "--to", str(to), *c]) == 0
    assert (to / "gateway-2026-10-05.tar.gz").exists()
    assert main(["messages", "show", str(received_id), *c]) == 0
    assert main(["retention", "restore", "--verify", *c]) == 0
    assert main(["retention", "show", *c]) == 0
    output = capsys.readouterr()
    assert "arkivert i" in output.out and "verified" in output.out
    assert "archived: 1 row(s)" in output.out
    assert main(["retention", "restore", str(received_id), *c]) == 0
    output_after = capsys.readouterr()
    everything = output.out + output.err + output_after.out + output_after.err + caplog.text
    assert not NATIONAL_ID.search(everything)
    assert not any(p in everything for p in patients)
    assert _raw(store, received_id) == raw


def test_one_archive_run_per_directory(
    store: Store, received: tuple[int, list[str]], tmp_path: Path
) -> None:
    """Two runs would each rewrite a day's file without the other's new members."""
    received_id, _ = received
    _done(store)
    to = tmp_path / "archive"
    to.mkdir()
    with (to / ".retention.lock").open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ArchiveError, match="another retention archive"):
            archive(store, before=LATER, directory=to)
    assert _raw(store, received_id) != b""
    assert archive(store, before=LATER, directory=to).messages == 1
