"""``gateway retention``'s work: archive what is no longer needed, verify and restore it.

Archiving a day: the bytes are read from the database, written durably into the day's archive
file (``archive.write_day``), and only then emptied in the database, in one transaction that
checks again that each message is still done with (``store.retention.mark_archived``). A crash
before that transaction leaves every byte in the database (and a copy in the file); running
again rewrites the file with the same members and then empties the rows. Nothing is archived
whose bills the payout ledger would still pay, or whose stored SHA-256 does not match its bytes.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from gateway.logs import get_logger
from gateway.payout import ledger
from gateway.retention.archive import ArchiveError, Entry, day_file, read_member, write_day
from gateway.store import Store
from gateway.store.retention import ArchivedPart, Candidate

__all__ = ["ArchiveResult", "archive", "restore", "unsettled_bills", "verify"]

log = get_logger("gateway.retention")


@dataclass(slots=True)
class ArchiveResult:
    """What an archive run did (or, dry, would do)."""

    messages: int = 0
    replies: int = 0
    bytes: int = 0
    files: list[Path] = field(default_factory=list)
    skipped_unsettled: int = 0
    skipped_partial: int = 0  # refused as too large: the database holds only the first bytes
    skipped_mismatch: list[int] = field(default_factory=list)


def unsettled_bills(store: Store) -> set[int]:
    """Bills the next payout run would pay, reverse or correct: their messages stay whole."""
    return {line.bill_id for line in ledger.plan(store.engine) if line.paper_id is None}


def archive(
    store: Store,
    *,
    before: datetime,
    directory: Path,
    dry_run: bool = False,
    after_write: Callable[[Path], None] | None = None,
) -> ArchiveResult:
    """Move the bytes of received messages older than ``before`` (and their replies' bodies)
    into ``directory``, one file per UTC day of receipt. ``after_write``: called with each file
    once it is durable, before the database is updated (tests inject a crash there)."""
    with _only_run(directory, dry_run):
        return _archive(store, before, directory, dry_run, after_write)


@contextmanager
def _only_run(directory: Path, dry_run: bool) -> Iterator[None]:
    """One archive run per directory at a time: two would each rewrite a day's file without
    the other's new members."""
    if dry_run:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".retention.lock").open("a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ArchiveError(f"another retention archive is writing into {directory}") from exc
        yield


def _archive(
    store: Store,
    before: datetime,
    directory: Path,
    dry_run: bool,
    after_write: Callable[[Path], None] | None,
) -> ArchiveResult:
    result = ArchiveResult()
    unsettled = unsettled_bills(store)
    by_day: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in store.retention.candidates(before):
        if unsettled.intersection(candidate.bill_ids):
            result.skipped_unsettled += 1
            continue
        by_day[candidate.received_at[:10]].append(candidate)
    for day, candidates in sorted(by_day.items()):
        path = day_file(directory, day).resolve()
        entries, received, replies = _entries(store, candidates, result)
        if not received:
            continue
        result.messages += len(received)
        result.replies += len(replies)
        result.bytes += sum(len(e.data) for e in entries)
        result.files.append(path)
        if dry_run:
            continue
        write_day(path, entries)
        log.info("archive_written", file=str(path), members=len(entries))
        if after_write is not None:
            after_write(path)
        done = store.retention.mark_archived(received, replies, str(path))
        log.info("archive_recorded", file=str(path), messages=len(done), asked=len(received))
    return result


def _entries(
    store: Store, candidates: list[Candidate], result: ArchiveResult
) -> tuple[list[Entry], list[tuple[int, str]], list[tuple[int, str, str, int]]]:
    entries: list[Entry] = []
    received: list[tuple[int, str]] = []
    replies: list[tuple[int, str, str, int]] = []
    for c in candidates:
        raw = store.retention.raw(c.received_id)
        if len(raw) != c.size:
            result.skipped_partial += 1  # its SHA-256 is not of what we hold: left as it is
            continue
        if hashlib.sha256(raw).hexdigest() != c.sha256:
            result.skipped_mismatch.append(c.received_id)
            log.warning("archive_skipped_hash_mismatch", received_id=c.received_id)
            continue
        member = f"received/{c.received_id}.eml"
        ids = {"kind": "received", "received_id": c.received_id, "msg_id": c.msg_id}
        ids["ebxml_message_id"] = c.ebxml_message_id
        entries.append(Entry(member, raw, ids))
        received.append((c.received_id, member))
        for reply_id, (filename, body) in store.retention.reply_bodies(c.reply_ids).items():
            reply_member = f"replies/{reply_id}/{filename}"
            facts: dict[str, object] = {"kind": "reply", "reply_id": reply_id}
            entry = Entry(reply_member, body, facts | {"received_id": c.received_id})
            entries.append(entry)
            replies.append((reply_id, reply_member, entry.sha256, len(body)))
    return entries, received, replies


def verify(store: Store, received_id: int | None = None) -> list[tuple[ArchivedPart, str]]:
    """Every archived part (of one received message, or all) read back and checked against
    its SHA-256; the parts that failed, with why."""
    failed: list[tuple[ArchivedPart, str]] = []
    for part in store.retention.archived_parts(received_id):
        try:
            read_member(Path(part.archive_file), part.member, part.sha256)
        except ArchiveError as exc:  # every failure is reported; none stops the rest
            failed.append((part, str(exc)))
    return failed


def restore(store: Store, received_id: int) -> list[ArchivedPart]:
    """Put the archived bytes of a received message and its replies back into the database,
    each checked against its SHA-256 first (``ArchiveError`` if one fails: nothing restored)."""
    parts = store.retention.archived_parts(received_id)
    read = [
        (part, read_member(Path(part.archive_file), part.member, part.sha256)) for part in parts
    ]
    store.retention.restore(read)
    log.info("archive_restored", received_id=received_id, parts=len(read))
    return parts
