"""A database made by an older gateway is brought up to date on open, rows kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.errors import StorageError
from gateway.records import ReplyRecord
from gateway.store import Database, Store
from gateway.store.migrations import MIGRATIONS, SCHEMA_VERSION

# The v1 tables a migration touches or references, as gateway 0.1 (schema 1) made them.
V1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE received (
    id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, source TEXT NOT NULL,
    source_ref TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    raw BLOB NOT NULL, outcome TEXT NOT NULL, detail TEXT,
    duplicate_of INTEGER REFERENCES received(id)
);
CREATE TABLE replies (
    id INTEGER PRIMARY KEY, received_id INTEGER NOT NULL REFERENCES received(id),
    kind TEXT NOT NULL, ebxml_message_id TEXT, ref_to_message_id TEXT,
    recipient TEXT NOT NULL, filename TEXT NOT NULL UNIQUE, body BLOB NOT NULL,
    created_at TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    delivered_at TEXT
);
CREATE INDEX replies_pending ON replies(state) WHERE state = 'pending';
INSERT INTO received VALUES (1, '2026-01-01T00:00:00+00:00', 'spool', 'a', 'x', 1, X'00',
                             'accepted', NULL, NULL);
INSERT INTO replies VALUES (1, 1, 'apprec', 'm1', 'r1', 'HER:1', 'a.apprec.eml', X'01',
                            '2026-01-01T00:00:00+00:00', 'delivered', '2026-01-01T00:00:01+00:00');
INSERT INTO replies VALUES (2, 1, 'acknowledgment', 'm2', 'r1', 'HER:1', 'a.ack.eml', X'02',
                            '2026-01-01T00:00:00+00:00', 'pending', NULL);
"""


def _v1_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(V1)
    db.commit()
    db.close()


def test_v1_database_is_migrated_with_its_replies(tmp_path: Path) -> None:
    path = tmp_path / "claims.sqlite"
    _v1_database(path)
    store = Store(path)
    try:
        assert [r.id for r in store.outbox.pending_replies()] == [2]
        rows = store.engine.rows(
            "SELECT id, state, sends, ack_state, received_id FROM replies ORDER BY id"
        )
        assert [tuple(r) for r in rows] == [
            (1, "delivered", 1, None, 1),
            (2, "pending", 0, None, 1),
        ]
        version = store.engine.rows("SELECT version FROM schema_version")
        assert [tuple(r) for r in version] == [(SCHEMA_VERSION,)]
        # The new shape: a reply without a received message (a payout decision) is allowed.
        with store.engine.transaction("payout reply") as tx:
            tx.execute(
                "INSERT INTO replies(received_id, kind, recipient, filename, body, created_at, "
                "state) VALUES (NULL, 'payout_decision', 'HER:1', 'p.eml', X'03', 'now', 'dead')"
            )
    finally:
        store.close()
    # Opening again is a no-op.
    Store(path).close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "claims.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="newer than this gateway"):
        Store(path)


_CONSOLE_TABLES = ("console_users", "console_sessions", "audit_log", "login_attempts")


def _shape(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table and index of a database, with the columns of each table."""
    db = sqlite3.connect(path)
    try:
        names = [
            (str(kind), str(name))
            for kind, name in db.execute(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {
            f"{kind} {name}": [
                tuple(column) for column in db.execute(f"PRAGMA table_info({name})")
            ]
            if kind == "table"
            else []
            for kind, name in names
        }
    finally:
        db.close()


def test_v2_database_gets_the_console_tables_as_a_new_one_has_them(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh).close()
    assert {f"table {t}" for t in _CONSOLE_TABLES} <= set(_shape(fresh))
    # A database as schema 2 left it: no console tables, a message received.
    old = tmp_path / "v2.sqlite"
    store = Store(old)
    with store.engine.transaction("v2") as tx:
        tx.execute(
            "INSERT INTO received(received_at, source, source_ref, sha256, size, raw, outcome) "
            "VALUES ('2026-01-01T00:00:00+00:00', 'spool', 'a', 'x', 1, X'00', 'accepted')"
        )
        for table in _CONSOLE_TABLES:
            tx.execute(f"DROP TABLE {table}")
        tx.execute("ALTER TABLE received DROP COLUMN signature_references")  # a later step's
        for column in ("claimed_at", "claimed_by"):  # a later step's
            tx.execute(f"ALTER TABLE replies DROP COLUMN {column}")
        for table, column in _RETENTION_COLUMNS:  # and the v7 step's
            tx.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        tx.execute("UPDATE schema_version SET version = 2")
    store.close()
    assert not {f"table {t}" for t in _CONSOLE_TABLES} & set(_shape(old))

    migrated = Store(old)
    try:
        version = migrated.engine.rows("SELECT version FROM schema_version")
        assert [tuple(r) for r in version] == [(SCHEMA_VERSION,)]
        assert migrated.messages.counts()["accepted"] == 1
        migrated.users.add_user("kari", "Kari", "$argon2id$x", ["drift"])
        assert [u.username for u in migrated.users.users()] == ["kari"]
    finally:
        migrated.close()
    assert _shape(old) == _shape(fresh)


def test_the_v3_step_makes_the_console_tables_schema_sql_describes(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh).close()
    old = tmp_path / "v2.sqlite"
    db = sqlite3.connect(old, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (2)")
    MIGRATIONS[2](db)  # the step alone, without schema.sql (or a later step) after it
    db.close()
    # Each console table and index of a new database, exactly: its columns and their types,
    # constraints and defaults.
    console = {
        k: v for k, v in _shape(fresh).items() if k.split()[1].startswith(_CONSOLE_TABLES)
    }
    made = {k: v for k, v in _shape(old).items() if k.split()[1].startswith(_CONSOLE_TABLES)}
    assert made == console
    assert len(made) == len(_CONSOLE_TABLES) + 4  # and their four indexes


_PRACTICE_OBJECTS = ("practice_imports", "practice_periods", "practices_in_force")


def test_the_v4_step_makes_the_practice_register_schema_sql_describes(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh).close()
    old = tmp_path / "v3.sqlite"
    db = sqlite3.connect(old, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (3)")
    MIGRATIONS[3](db)  # the step alone, without schema.sql (or a later step) after it
    db.close()

    def practice_shape(path: Path) -> dict[str, list[tuple[object, ...]]]:
        shape = {
            k: v for k, v in _shape(path).items() if k.split()[1].startswith(_PRACTICE_OBJECTS)
        }
        with sqlite3.connect(path) as view_db:  # a view's columns too, not only its name
            shape["columns practices_in_force"] = [
                tuple(c) for c in view_db.execute("PRAGMA table_info(practices_in_force)")
            ]
        return shape

    made = practice_shape(old)
    assert made == practice_shape(fresh)
    assert set(made) == {
        "table practice_imports",
        "table practice_periods",
        "index practice_periods_her",
        "view practices_in_force",
        "columns practices_in_force",
    }


#: The columns the v7 step (retention) adds, in order.
_RETENTION_COLUMNS = (
    ("received", "archive_file"),
    ("received", "archive_member"),
    ("replies", "body_sha256"),
    ("replies", "body_size"),
    ("replies", "archive_file"),
    ("replies", "archive_member"),
)


def test_a_v4_database_gets_the_signature_references_column(tmp_path: Path) -> None:
    """Signed acknowledgments: the received row keeps the references it acknowledged."""
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh).close()
    old = tmp_path / "v4.sqlite"
    store = Store(old)
    with store.engine.transaction("v4") as tx:
        tx.execute(
            "INSERT INTO received(received_at, source, source_ref, sha256, size, raw, outcome) "
            "VALUES ('2026-01-01T00:00:00+00:00', 'spool', 'a', 'x', 1, X'00', 'accepted')"
        )
        tx.execute("ALTER TABLE received DROP COLUMN signature_references")
        for column in ("claimed_at", "claimed_by"):  # the next step's
            tx.execute(f"ALTER TABLE replies DROP COLUMN {column}")
        for table, column in _RETENTION_COLUMNS:  # added after it, by the v7 step
            tx.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        tx.execute("UPDATE schema_version SET version = 4")
    store.close()
    assert "signature_references" not in [c[1] for c in _shape(old)["table received"]]
    migrated = Store(old)
    try:
        rows = migrated.engine.rows("SELECT source_ref, signature_references FROM received")
        assert [tuple(r) for r in rows] == [("a", None)]
    finally:
        migrated.close()
    assert _shape(old) == _shape(fresh)


def test_the_v6_step_makes_the_paper_claims_table_schema_sql_describes(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh).close()
    old = tmp_path / "v5.sqlite"
    db = sqlite3.connect(old, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (5)")
    MIGRATIONS[5](db)  # the step alone, without schema.sql (or a later step) after it
    db.close()
    made = {k: v for k, v in _shape(old).items() if k.split()[1].startswith("paper_claims")}
    assert made and made == {
        k: v for k, v in _shape(fresh).items() if k.split()[1].startswith("paper_claims")
    }


#: The version the outbox claims' step (``claimed_by``, ``claimed_at``) starts from.
CLAIMS_STEP_FROM = 6


def _reply_columns(store: Store) -> list[tuple[object, ...]]:
    """The ``replies`` table's columns in order: name, type, not null, default."""
    if store.engine.dialect == "sqlite":
        return [
            (r[1], r[2], r[3], r[4]) for r in store.engine.rows("PRAGMA table_info(replies)")
        ]
    return [
        tuple(r)
        for r in store.engine.rows(
            "SELECT column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'replies' ORDER BY ordinal_position"
        )
    ]


def test_the_claims_step_adds_the_outbox_claims_schema_sql_describes(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No PostgreSQL database is this old (they start at POSTGRES_SINCE); the step runs there
    # all the same, translated, as every later step will.
    monkeypatch.setattr("gateway.store.postgres.POSTGRES_SINCE", CLAIMS_STEP_FROM)
    assert "claimed_by" in (MIGRATIONS[CLAIMS_STEP_FROM].__doc__ or "")
    store = Store(database)
    fresh = _reply_columns(store)
    names = [c[0] for c in fresh]
    assert names[names.index("claimed_by") + 1] == "claimed_at"
    # The database as the version before the step left it, with a reply waiting.
    store.outbox.queue_replies(
        [ReplyRecord(kind="apprec", recipient="HER:1", filename="a.xml", body=b"a")]
    )
    with store.engine.transaction("back to the version before the step") as tx:
        for column in ("claimed_at", "claimed_by"):
            tx.execute(f"ALTER TABLE replies DROP COLUMN {column}")
        for table, column in _RETENTION_COLUMNS:  # and the next step's
            tx.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        tx.execute("UPDATE schema_version SET version = ?", (CLAIMS_STEP_FROM,))
    store.close()

    migrated = Store(database)
    try:
        assert migrated.engine.rows("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
        assert _reply_columns(migrated) == fresh
        assert [r.filename for r in migrated.outbox.claim_due()] == ["a.xml"]
    finally:
        migrated.close()


def test_a_v7_database_gets_the_retention_columns_rows_kept(tmp_path: Path) -> None:
    """Retention: where archived bytes are, a reply body's hash and size; nothing else moves."""
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh).close()
    old = tmp_path / "v7.sqlite"
    store = Store(old)
    with store.engine.transaction("v7") as tx:
        tx.execute(
            "INSERT INTO received(received_at, source, source_ref, sha256, size, raw, outcome) "
            "VALUES ('2026-01-01T00:00:00+00:00', 'spool', 'a', 'x', 1, X'00', 'accepted')"
        )
        tx.execute(
            "INSERT INTO replies(received_id, kind, recipient, filename, body, created_at, "
            "state) VALUES (1, 'apprec', 'HER:1', 'a.eml', X'0102', 'now', 'delivered')"
        )
        for table, column in _RETENTION_COLUMNS:
            tx.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        tx.execute("UPDATE schema_version SET version = 7")
    store.close()
    assert "archive_file" not in [c[1] for c in _shape(old)["table received"]]
    migrated = Store(old)
    try:
        received = migrated.engine.rows("SELECT raw, archive_file, archive_member FROM received")
        assert [tuple(r) for r in received] == [(b"\x00", None, None)]
        assert [
            tuple(r)
            for r in migrated.engine.rows(
                "SELECT body, body_sha256, body_size, archive_file, archive_member FROM replies"
            )
        ] == [(b"\x01\x02", None, None, None, None)]
    finally:
        migrated.close()
    assert _shape(old) == _shape(fresh)
