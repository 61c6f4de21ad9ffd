"""Schema migrations of the claims store, applied in order on start, each in one transaction.

``schema.sql`` always describes the newest schema (every statement ``IF NOT EXISTS``, so a new
database is made from it alone). A database made by an older version is first brought up to date
here, before ``schema.sql`` runs, because SQLite cannot change a column's constraints in place:
a changed table is rebuilt and its rows copied.

A step is a function of the open transaction's ``Statements`` (``execute``), written in
SQLite's types. PostgreSQL runs the same steps, each statement translated
(``gateway.store.ddl``), from ``POSTGRES_SINCE`` on: no PostgreSQL database is older, so the
steps before it (table rebuilds) stay SQLite's alone, and every later step must be portable
(``ALTER TABLE ... ADD COLUMN``, ``CREATE INDEX IF NOT EXISTS``, ``UPDATE``).

Several instances may start together on one database: each step re-reads the version inside
its own write transaction (SQLite's ``BEGIN IMMEDIATE``; PostgreSQL's engine also holds an
advisory lock over the whole migration), so a step runs exactly once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Protocol

#: The schema version ``schema.sql`` describes.
SCHEMA_VERSION = 3

#: The oldest version a PostgreSQL database can have (it is made from ``schema.sql``, at the
#: then newest version; PostgreSQL support came with version 3).
POSTGRES_SINCE = 2


class Statements(Protocol):
    """What a migration step runs its statements on (a driver connection in a transaction)."""

    def execute(self, sql: str, parameters: Sequence[object] = ..., /) -> object: ...


def _v1_to_v2(db: Statements) -> None:
    """Outbox v2: replies without a received message (payout decisions), dead letters,
    delivery attempts and ebXML acknowledgment tracking."""
    db.execute("ALTER TABLE replies RENAME TO replies_v1")
    db.execute(
        """
        CREATE TABLE replies (
            id                 INTEGER PRIMARY KEY,
            received_id        INTEGER REFERENCES received(id),
            kind               TEXT    NOT NULL,
            ebxml_message_id   TEXT,
            ref_to_message_id  TEXT,
            recipient          TEXT    NOT NULL,
            filename           TEXT    NOT NULL UNIQUE,
            body               BLOB    NOT NULL,
            created_at         TEXT    NOT NULL,
            state              TEXT    NOT NULL
                               CHECK (state IN ('pending', 'delivered', 'dead', 'discarded')),
            delivered_at       TEXT,
            attempts           INTEGER NOT NULL DEFAULT 0,
            next_attempt_at    TEXT,
            last_error         TEXT,
            sends              INTEGER NOT NULL DEFAULT 0,
            ack_state          TEXT
                               CHECK (ack_state IN ('awaiting', 'acknowledged', 'error',
                                                    'expired')),
            ack_received_id    INTEGER REFERENCES received(id),
            ack_at             TEXT,
            expires_at         TEXT
        )
        """
    )
    # Replies delivered before v2 count as sent once; their acks were never tracked.
    db.execute(
        "INSERT INTO replies(id, received_id, kind, ebxml_message_id, ref_to_message_id, "
        "recipient, filename, body, created_at, state, delivered_at, sends) "
        "SELECT id, received_id, kind, ebxml_message_id, ref_to_message_id, recipient, "
        "filename, body, created_at, state, delivered_at, "
        "CASE state WHEN 'delivered' THEN 1 ELSE 0 END FROM replies_v1"
    )
    db.execute("DROP TABLE replies_v1")


def _v2_to_v3(db: Statements) -> None:
    """Outbox rows claimed by the instance delivering them (several instances, one database):
    ``claimed_by`` names the instance, ``claimed_at`` when; a claim of an instance that is no
    longer alive is void."""
    db.execute("ALTER TABLE replies ADD COLUMN claimed_by TEXT")
    db.execute("ALTER TABLE replies ADD COLUMN claimed_at TEXT")


#: Migration from version N to N + 1, keyed by N.
MIGRATIONS: dict[int, Callable[[Statements], None]] = {1: _v1_to_v2, 2: _v2_to_v3}


def migrate(db: sqlite3.Connection) -> int:
    """Bring a SQLite database that has a ``schema_version`` row to ``SCHEMA_VERSION``; return
    the version it is at (a newer one is left alone for the caller to refuse).

    ``db`` must be in autocommit mode (``isolation_level=None``); each step is its own
    ``BEGIN IMMEDIATE`` transaction that reads the version first, so a crash leaves the
    database at a whole version and a second process starting at the same time skips the steps
    the first one made.
    """
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            current = int(db.execute("SELECT version FROM schema_version").fetchone()[0])
            if current >= SCHEMA_VERSION:
                db.execute("COMMIT")
                return current
            MIGRATIONS[current](db)
            db.execute("UPDATE schema_version SET version = ?", (current + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
