"""What the IMAP intake has seen: per mailbox its UIDVALIDITY, per mail where it came from.

A mail is identified on the server by (mailbox, UIDVALIDITY, UID) and, in itself, by its
``Message-ID`` header and the SHA-256 of its bytes. The tracker remembers both, so that

- a mail committed but not yet moved (a crash between the two) is recognised when it is fetched
  again: its row says ``committed`` and the poller only finishes the move;
- a UID the server reuses for other bytes (a broken server, or UIDVALIDITY not bumped after a
  restore) is not mistaken for the mail it had before: the row's SHA-256 differs;
- the same bytes (or the same Message-ID) delivered twice are recorded with ``duplicate_of``
  pointing at the first. The mail still goes through the pipeline, whose ebXML duplicate check
  answers it again, as ebMS duplicate elimination asks.

The tracker keeps its own tables on the claims database, through the store's engine
(``Engine.create_tables``); the claims store's schema is not touched. Its commits need not
survive a power cut (``durable=False``): a mail it forgets is still known by its ``source_ref``.
All methods are synchronous; the poller calls them through ``asyncio.to_thread`` so a database
busy with the pipeline never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.errors import StorageError
from gateway.store.engine import Engine

MailState = Literal["committed", "moved"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS imap_mailboxes (
    mailbox      TEXT    PRIMARY KEY,           -- the configured mailbox name
    uidvalidity  INTEGER NOT NULL,              -- of its intake folder, as last seen
    changed_at   TEXT    NOT NULL               -- UTC, ISO 8601: when it was first/last changed
);
CREATE TABLE IF NOT EXISTS imap_mails (
    id            INTEGER PRIMARY KEY,
    mailbox       TEXT    NOT NULL,
    uidvalidity   INTEGER NOT NULL,
    uid           INTEGER NOT NULL,
    message_id    TEXT,                         -- the Message-ID header, if any
    sha256        TEXT    NOT NULL,             -- of the raw bytes as fetched
    source_ref    TEXT    NOT NULL UNIQUE,      -- what the intake committed it under
    state         TEXT    NOT NULL CHECK (state IN ('committed', 'moved')),
    duplicate_of  INTEGER REFERENCES imap_mails(id),
    committed_at  TEXT    NOT NULL,
    moved_at      TEXT,
    UNIQUE (mailbox, uidvalidity, uid, sha256)
);
CREATE INDEX IF NOT EXISTS imap_mails_sha256 ON imap_mails(sha256);
CREATE INDEX IF NOT EXISTS imap_mails_message_id ON imap_mails(message_id);
"""

_COLUMNS = (
    "id, mailbox, uidvalidity, uid, message_id, sha256, source_ref, state, duplicate_of, "
    "committed_at, moved_at"
)


@dataclass(frozen=True, slots=True)
class TrackedMail:
    """One mail the intake has committed."""

    id: int
    mailbox: str
    uidvalidity: int
    uid: int
    message_id: str | None
    sha256: str
    source_ref: str
    state: MailState
    duplicate_of: int | None
    committed_at: str
    moved_at: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _row(r: Sequence[Any]) -> TrackedMail:
    return TrackedMail(
        id=int(r[0]),
        mailbox=str(r[1]),
        uidvalidity=int(r[2]),
        uid=int(r[3]),
        message_id=None if r[4] is None else str(r[4]),
        sha256=str(r[5]),
        source_ref=str(r[6]),
        state="moved" if r[7] == "moved" else "committed",
        duplicate_of=None if r[8] is None else int(r[8]),
        committed_at=str(r[9]),
        moved_at=None if r[10] is None else str(r[10]),
    )


class MailTracker:
    """The seen-mail tables on the claims database (``engine``: the store's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.create_tables(SCHEMA)

    def close(self) -> None:
        """Nothing to close: the engine belongs to the store."""

    def _execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.engine.rows(sql, params)

    # --- mailboxes -----------------------------------------------------------------------------

    def check_uidvalidity(self, mailbox: str, uidvalidity: int) -> int | None:
        """Remember ``uidvalidity`` for ``mailbox``; return the previous value if it changed.

        None means unchanged or seen for the first time. After a change every UID of the old
        value is meaningless: the poller re-scans the whole folder (it always does), and mails
        it had committed under the old value are caught as duplicates by their bytes.
        """
        with self.engine.transaction("mail tracker", durable=False) as db:
            rows = db.rows("SELECT uidvalidity FROM imap_mailboxes WHERE mailbox = ?", (mailbox,))
            previous = int(rows[0][0]) if rows else None
            if previous != uidvalidity:
                db.execute(
                    "INSERT INTO imap_mailboxes (mailbox, uidvalidity, changed_at) "
                    "VALUES (?, ?, ?) ON CONFLICT (mailbox) DO UPDATE SET "
                    "uidvalidity = excluded.uidvalidity, changed_at = excluded.changed_at",
                    (mailbox, uidvalidity, _now()),
                )
        return previous if previous is not None and previous != uidvalidity else None

    def uidvalidity(self, mailbox: str) -> int | None:
        """The UIDVALIDITY last seen for ``mailbox``."""
        rows = self._execute("SELECT uidvalidity FROM imap_mailboxes WHERE mailbox = ?", (mailbox,))
        return int(rows[0][0]) if rows else None

    # --- mails ---------------------------------------------------------------------------------

    def lookup(self, mailbox: str, uidvalidity: int, uid: int) -> list[TrackedMail]:
        """Mails committed under this server position (normally none or one)."""
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM imap_mails "  # noqa: S608 - constant column list
            "WHERE mailbox = ? AND uidvalidity = ? AND uid = ? ORDER BY id",
            (mailbox, uidvalidity, uid),
        )
        return [_row(r) for r in rows]

    def by_source_ref(self, source_ref: str) -> TrackedMail | None:
        """The mail committed under ``source_ref``."""
        rows = self._execute(
            f"SELECT {_COLUMNS} FROM imap_mails WHERE source_ref = ?",  # noqa: S608
            (source_ref,),
        )
        return _row(rows[0]) if rows else None

    def find_earlier(self, sha256: str, message_id: str | None) -> tuple[TrackedMail, str] | None:
        """The first mail with the same bytes (or else the same Message-ID), and which matched."""
        for column, value in (("sha256", sha256), ("message_id", message_id)):
            if not value:
                continue
            rows = self._execute(
                f"SELECT {_COLUMNS} FROM imap_mails WHERE {column} = ? "  # noqa: S608
                "ORDER BY id LIMIT 1",
                (value,),
            )
            if rows:
                return _row(rows[0]), column
        return None

    def record_committed(
        self,
        *,
        mailbox: str,
        uidvalidity: int,
        uid: int,
        message_id: str | None,
        sha256: str,
        source_ref: str,
        duplicate_of: int | None = None,
    ) -> TrackedMail:
        """The intake committed this mail under ``source_ref`` (idempotent)."""
        with self.engine.transaction("mail tracker", durable=False) as db:
            db.execute(
                "INSERT INTO imap_mails (mailbox, uidvalidity, uid, message_id, sha256, "
                "source_ref, state, duplicate_of, committed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'committed', ?, ?) ON CONFLICT (source_ref) DO NOTHING",
                (mailbox, uidvalidity, uid, message_id, sha256, source_ref, duplicate_of, _now()),
            )
        found = self.by_source_ref(source_ref)
        if found is None:  # pragma: no cover - the row was just written
            raise StorageError(f"mail tracker: {source_ref} not recorded")
        return found

    def mark_moved(self, ids: Iterable[int]) -> None:
        """These mails are gone from the intake folder (moved, or flagged and expunged)."""
        moved_at = _now()
        with self.engine.transaction("mail tracker", durable=False) as db:
            db.execute_many(
                "UPDATE imap_mails SET state = 'moved', moved_at = ? "
                "WHERE id = ? AND state = 'committed'",
                [(moved_at, i) for i in ids],
            )

    def mails(self, mailbox: str | None = None) -> list[TrackedMail]:
        """Every tracked mail (of ``mailbox``), oldest first: for tests and inspection."""
        if mailbox is None:
            rows = self._execute(f"SELECT {_COLUMNS} FROM imap_mails ORDER BY id")  # noqa: S608
        else:
            rows = self._execute(
                f"SELECT {_COLUMNS} FROM imap_mails WHERE mailbox = ? ORDER BY id",  # noqa: S608
                (mailbox,),
            )
        return [_row(r) for r in rows]
