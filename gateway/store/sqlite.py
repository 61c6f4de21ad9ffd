"""The claims store's engine on SQLite (WAL), the embedded default.

``synchronous=FULL`` because the spool file is moved away only after an intake's commit: the
commit has to survive a power cut, not just a process crash. The connection is shared by the
daemon's threads, one statement or transaction at a time (guarded by a lock). The schema is
``schema.sql``; a database made by an older version is first migrated (``migrations.py``).
Locks between processes on the machine (``try_lock``: IMAP mailboxes, the instance's own) are
``flock`` files in ``<database>.locks/`` (``file_locks.py``).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from gateway.errors import StorageError
from gateway.store.ddl import split_statements
from gateway.store.engine import Params, Row, instance_lock, new_instance_name
from gateway.store.file_locks import FileLocks
from gateway.store.migrations import SCHEMA_VERSION, migrate
from gateway.store.transactions import immediate

__all__ = ["SqliteEngine", "SqliteTransaction"]

_SKIP_LOCKED = re.compile(r"\s+FOR\s+UPDATE\s+SKIP\s+LOCKED\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def _dialect(sql: str) -> str:
    """``sql`` for SQLite: row locks are dropped (a write transaction locks the database)."""
    return _SKIP_LOCKED.sub("", sql) if "LOCKED" in sql.upper() else sql


class SqliteTransaction:
    """The store's ``Transaction`` over a sqlite3 connection whose transaction is open: the
    engine's own, or that of a module with its own connection to the claims database."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        return self._db.execute(_dialect(sql), params).fetchall()

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._db.execute(_dialect(sql), params).fetchone()
        return row

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._db.execute(_dialect(sql), params).rowcount

    def execute_many(self, sql: str, params: Iterable[Params]) -> None:
        self._db.executemany(_dialect(sql), params)

    def insert(self, sql: str, params: Params) -> int:
        # fetchall: the statement must have run to its end before the transaction commits.
        returned = self._db.execute(sql, params).fetchall()
        if len(returned) != 1:
            raise StorageError(f"an insert returned {len(returned)} ids, not one: {sql[:60]}")
        return int(returned[0][0])

    def serialise(self, name: str) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` serialised this transaction with every writer."""
        del name


class SqliteEngine:
    """The claims database in one SQLite file, created or migrated when opened."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.instance = new_instance_name()
        self._lock = threading.RLock()
        self._created: set[str] = set()
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
        self._locks = FileLocks(path.with_name(path.name + ".locks"))
        self._locks.try_lock(instance_lock(self.instance))

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._locks.unlock(instance_lock(self.instance), remove=True)
        self._locks.close()

    @contextmanager
    def transaction(self, failure: str, *, durable: bool = True) -> Iterator[SqliteTransaction]:
        with self._lock:
            try:
                if not durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync per commit
                try:
                    with immediate(self._db) as db:
                        yield SqliteTransaction(db)
                finally:
                    if not durable:
                        self._db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise StorageError(f"{failure}: {exc}") from exc

    @contextmanager
    def session(self, failure: str) -> Iterator[SqliteTransaction]:
        with self._lock:
            try:
                yield SqliteTransaction(self._db)  # autocommit: each statement on its own
            except sqlite3.Error as exc:
                raise StorageError(f"{failure}: {exc}") from exc

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        with self._lock:
            try:
                return self._db.execute(_dialect(sql), params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"query failed: {exc}") from exc

    def one(self, sql: str, params: Params = ()) -> Row | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def create_tables(self, ddl: str) -> None:
        with self._lock:
            if ddl in self._created:
                return
            try:
                if self._db.in_transaction:
                    # Called inside a transaction of this thread: executescript would commit
                    # it, so run the statements in it (and make them again next time, in case
                    # it rolls back).
                    for statement in split_statements(ddl):
                        self._db.execute(statement)
                    return
                self._db.executescript(ddl)
            except sqlite3.Error as exc:
                raise StorageError(f"could not create tables: {exc}") from exc
            self._created.add(ddl)

    # --- locks between processes -----------------------------------------------------------------

    def try_lock(self, name: str) -> bool:
        return self._locks.try_lock(name)

    def holds(self, name: str) -> bool:
        return self._locks.holds(name)

    def held(self, name: str) -> bool:
        # An instance's lock file is removed once nobody holds it: one file per dead instance
        # would otherwise pile up.
        return self._locks.held(name, remove_stale=name.startswith(instance_lock("")))

    def unlock(self, name: str) -> None:
        self._locks.unlock(name)

    # --- schema ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        schema = resources.files("gateway.store").joinpath("schema.sql").read_text("utf-8")
        with self._lock:
            if self._has_version():
                version = migrate(self._db)
                if version > SCHEMA_VERSION:
                    raise StorageError(
                        f"database {self.path} has schema version {version}, newer than this "
                        f"gateway's {SCHEMA_VERSION}: upgrade gateway"
                    )
            # Every statement is CREATE ... IF NOT EXISTS: safe to run on each start.
            self._db.executescript(schema)
            with immediate(self._db) as db:
                if db.execute("SELECT version FROM schema_version").fetchone() is None:
                    db.execute("INSERT INTO schema_version(version) VALUES (?)", (SCHEMA_VERSION,))

    def _has_version(self) -> bool:
        has_table = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if has_table is None:
            return False
        return self._db.execute("SELECT version FROM schema_version").fetchone() is not None
