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
SCHEMA_VERSION = 8

#: The oldest version a PostgreSQL database can have (it is made from ``schema.sql``, at the
#: then newest version; PostgreSQL support came with version 7, the outbox claims).
POSTGRES_SINCE = 7


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
    """The web console's tables (``gateway.store.users``): users, sessions, the audit log and
    login attempts. New tables only; no row of an existing one changes."""
    for statement in (
        "CREATE TABLE console_users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, "
        "display_name TEXT NOT NULL, password_hash TEXT NOT NULL, roles TEXT NOT NULL, "
        "disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, "
        "updated_at TEXT NOT NULL)",
        "CREATE TABLE console_sessions (token_hash TEXT PRIMARY KEY, "
        "user_id INTEGER NOT NULL REFERENCES console_users(id), csrf_token TEXT NOT NULL, "
        "created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, expires_at TEXT NOT NULL, "
        "client TEXT)",
        "CREATE INDEX console_sessions_user ON console_sessions(user_id)",
        'CREATE TABLE audit_log (id INTEGER PRIMARY KEY, "at" TEXT NOT NULL, '
        "actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT, detail TEXT, client TEXT)",
        'CREATE INDEX audit_log_at ON audit_log("at")',
        'CREATE TABLE login_attempts (id INTEGER PRIMARY KEY, "at" TEXT NOT NULL, '
        "username TEXT NOT NULL, client TEXT NOT NULL, ok INTEGER NOT NULL)",
        'CREATE INDEX login_attempts_user ON login_attempts(username, "at")',
        'CREATE INDEX login_attempts_client ON login_attempts(client, "at")',
    ):
        db.execute(statement)


def _v3_to_v4(db: Statements) -> None:
    """The practice register: imported files, their rows, the view of the register in force."""
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS practice_imports (
            id           INTEGER PRIMARY KEY,
            source       TEXT    NOT NULL,
            format       TEXT    NOT NULL CHECK (format IN ('csv', 'json')),
            sha256       TEXT    NOT NULL,
            rows         INTEGER NOT NULL,
            imported_at  TEXT    NOT NULL,
            content      BLOB    NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS practice_periods (
            id                        INTEGER PRIMARY KEY,
            import_id                 INTEGER NOT NULL REFERENCES practice_imports(id),
            her_id                    TEXT    NOT NULL,
            enh_id                    TEXT,
            name                      TEXT    NOT NULL,
            practice_type             TEXT    NOT NULL,
            practitioner_type         TEXT,
            specialties               TEXT    NOT NULL,
            fagomrade                 TEXT,
            municipality              TEXT,
            valid_from                TEXT    NOT NULL,
            valid_to                  TEXT,
            direct_settlement_from    TEXT,
            direct_settlement_to      TEXT,
            operating_agreement_from  TEXT,
            operating_agreement_to    TEXT,
            account                   TEXT,
            kid                       TEXT,
            owner_her_id              TEXT,
            mail_address              TEXT,
            cpa_id                    TEXT
        )
        """
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS practice_periods_her "
        "ON practice_periods(import_id, her_id, valid_from)"
    )
    db.execute(
        "CREATE VIEW IF NOT EXISTS practices_in_force AS SELECT p.* FROM practice_periods p "
        "WHERE p.import_id = (SELECT MAX(id) FROM practice_imports)"
    )


def _v4_to_v5(db: Statements) -> None:
    """Signed acknowledgments: the received message's ``ds:Reference`` copies, kept with it."""
    db.execute("ALTER TABLE received ADD COLUMN signature_references TEXT")


def _v5_to_v6(db: Statements) -> None:
    """Paper claims as aggregates (refund per submission, practice and period)."""
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS paper_claims (
            id             INTEGER PRIMARY KEY,
            practice_her   TEXT    NOT NULL,
            submission     TEXT    NOT NULL,
            period_from    TEXT    NOT NULL,
            period_to      TEXT    NOT NULL,
            practice_type  TEXT,
            bills          INTEGER NOT NULL CHECK (bills >= 0),
            refund_ore     INTEGER NOT NULL CHECK (refund_ore >= 0),
            registered_at  TEXT    NOT NULL,
            registered_by  TEXT    NOT NULL CHECK (length(trim(registered_by)) > 0),
            UNIQUE (practice_her, submission),
            CHECK (period_from <= period_to)
        )
        """
    )


def _v6_to_v7(db: Statements) -> None:
    """Outbox rows claimed by the instance delivering them (several instances, one database):
    ``claimed_by`` names the instance, ``claimed_at`` when; a claim of an instance that is no
    longer alive is void."""
    db.execute("ALTER TABLE replies ADD COLUMN claimed_by TEXT")
    db.execute("ALTER TABLE replies ADD COLUMN claimed_at TEXT")


def _v7_to_v8(db: Statements) -> None:
    """Retention (``gateway retention archive``): where the archived bytes of a received
    message or a reply now are, and a reply body's hash and size kept once its bytes are gone.
    New nullable columns only: no row changes."""
    for table, column, kind in (
        ("received", "archive_file", "TEXT"),
        ("received", "archive_member", "TEXT"),
        ("replies", "body_sha256", "TEXT"),
        ("replies", "body_size", "INTEGER"),
        ("replies", "archive_file", "TEXT"),
        ("replies", "archive_member", "TEXT"),
    ):
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


#: Migration from version N to N + 1, keyed by N.
MIGRATIONS: dict[int, Callable[[Statements], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
    6: _v6_to_v7,
    7: _v7_to_v8,
}


def migrate(db: sqlite3.Connection, *, to: int = SCHEMA_VERSION) -> int:
    """Bring a SQLite database that has a ``schema_version`` row to version ``to`` (default
    ``SCHEMA_VERSION``); return the version it is at (a newer one is left alone for the caller
    to refuse).

    ``db`` must be in autocommit mode (``isolation_level=None``); each step is its own
    ``BEGIN IMMEDIATE`` transaction that reads the version first, so a crash leaves the
    database at a whole version and a second process starting at the same time skips the steps
    the first one made.
    """
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            current = int(db.execute("SELECT version FROM schema_version").fetchone()[0])
            if current >= to:
                db.execute("COMMIT")
                return current
            MIGRATIONS[current](db)
            db.execute("UPDATE schema_version SET version = ?", (current + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
