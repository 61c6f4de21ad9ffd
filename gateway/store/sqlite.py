"""The claims store's engine on SQLite (WAL): the one module that knows the database is SQLite.

``synchronous=FULL`` because the spool file is moved away only after an intake's commit: the
commit has to survive a power cut, not just a process crash. The connection is shared by the
daemon's threads, one statement or transaction at a time (guarded by a lock). The schema is
``schema.sql``; a database made by an older version is first migrated (``migrations.py``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from gateway.errors import StorageError
from gateway.store.engine import Params, Row
from gateway.store.migrations import SCHEMA_VERSION, migrate
from gateway.store.transactions import immediate

__all__ = ["SqliteEngine", "SqliteTransaction"]


class SqliteTransaction:
    """The store's ``Transaction`` over a sqlite3 connection whose transaction is open: the
    engine's own, or that of a module with its own connection to the claims database."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        return self._db.execute(sql, params).fetchall()

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._db.execute(sql, params).fetchone()
        return row

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._db.execute(sql, params).rowcount

    def execute_many(self, sql: str, params: Iterable[Params]) -> None:
        self._db.executemany(sql, params)

    def insert(self, sql: str, params: Params) -> int:
        # fetchall: the statement must have run to its end before the transaction commits.
        returned = self._db.execute(sql, params).fetchall()
        if len(returned) != 1:
            raise StorageError(f"an insert returned {len(returned)} ids, not one: {sql[:60]}")
        return int(returned[0][0])


class SqliteEngine:
    """The claims database in one SQLite file, created or migrated when opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # Statement journals (each statement inside a batch's transaction saves the pages
            # it is about to change again) in memory, not in temp files: on disk they were a
            # quarter of all bytes the daemon wrote.
            self._db.execute("PRAGMA temp_store=MEMORY")
            self._migrate()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self, failure: str) -> Iterator[SqliteTransaction]:
        with self._lock:
            try:
                with immediate(self._db) as db:
                    yield SqliteTransaction(db)
            except sqlite3.Error as exc:
                raise StorageError(f"{failure}: {exc}") from exc

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"query failed: {exc}") from exc

    def one(self, sql: str, params: Params = ()) -> Row | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    # --- schema ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        schema = resources.files("gateway.store").joinpath("schema.sql").read_text("utf-8")
        with self._lock:
            version = self._existing_version()
            if version is not None and version > SCHEMA_VERSION:
                raise StorageError(
                    f"database {self.path} has schema version {version}, newer than this "
                    f"gateway's {SCHEMA_VERSION}: upgrade gateway"
                )
            if version is not None and version < SCHEMA_VERSION:
                migrate(self._db, version)
            # Every statement is CREATE ... IF NOT EXISTS: safe to run on each start.
            self._db.executescript(schema)
            with immediate(self._db) as db:
                if db.execute("SELECT version FROM schema_version").fetchone() is None:
                    db.execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION,))

    def _existing_version(self) -> int | None:
        has_table = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if has_table is None:
            return None
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        return None if row is None else int(row[0])
