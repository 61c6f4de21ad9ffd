"""A database made by an older gateway is brought up to date on open, rows kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.errors import StorageError
from gateway.store import Store
from gateway.store.migrations import SCHEMA_VERSION

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
