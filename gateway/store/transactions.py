"""SQLite connections in autocommit mode and explicit ``BEGIN IMMEDIATE`` transactions.

The SQLite engine's transactions (``immediate``). A module with tables of its own on the claims
database uses the store's engine instead (``Engine.create_tables``, ``Engine.transaction``), so
that it runs on PostgreSQL too, as the payout ledger, the statistics reference tables and the
mail tracker do; ``connect`` is left for code that only ever reads a SQLite file::

    with closing(connect(path, foreign_keys=True, schema=SCHEMA)) as db, immediate(db):
        ...  # committed when the block ends, rolled back on any error

``BEGIN IMMEDIATE`` takes the write lock at the start, so concurrent writers (two daemons on
one database) wait for each other (up to ``timeout`` seconds) instead of failing halfway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["connect", "immediate"]


def connect(
    path: Path | str,
    *,
    timeout: float = 30.0,
    foreign_keys: bool = False,
    schema: str | None = None,
) -> sqlite3.Connection:
    """A connection in autocommit mode (``isolation_level=None``: transactions are explicit).

    ``foreign_keys`` turns on ``PRAGMA foreign_keys``; ``schema`` is a script run once connected
    (``CREATE TABLE IF NOT EXISTS ...``). The connection is closed again if either fails."""
    db = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    try:
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        if schema is not None:
            db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction on ``db``: committed when the block ends, rolled back
    (if still open) on any error, which is re-raised. ``db`` must be in autocommit mode."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
