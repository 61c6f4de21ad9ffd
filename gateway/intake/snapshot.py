"""The store as a worker reads it: one read-only snapshot per message, every read recorded.

A worker never writes: the writer (``gateway.intake.writer``) does. It opens the database
read-only and reads each message's history in one read transaction, so all its reads see the
same committed state; the newest received id in that state is the message's *snapshot*. The
history and duplicate lookups the pipeline makes are recorded in a ``Reads`` on the way
(``gateway.intake.conflicts`` says why).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from gateway.errors import StorageError
from gateway.intake.conflicts import Reads
from gateway.records import PriorMessage
from gateway.rules.base import HistoricBill, StoredBill
from gateway.store import Database, Store
from gateway.store.engine import Params, ReadOnlyEngine, Row, Transaction
from gateway.store.history import History
from gateway.store.intake import Intake

__all__ = ["Snapshot", "SnapshotEngine", "open_snapshot", "snapshot_store"]


class Snapshot(Protocol):
    """A worker's read-only view of the store (``SnapshotEngine`` on SQLite,
    ``gateway.store.postgres.PostgresSnapshot`` on PostgreSQL)."""

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]: ...

    @property
    def instance(self) -> str: ...

    def snapshot(self) -> AbstractContextManager[int]:
        """One read transaction: every read inside sees the same committed state. Yields the
        newest received id in it."""
        ...

    def rows(self, sql: str, params: Params = ()) -> list[Row]: ...

    def one(self, sql: str, params: Params = ()) -> Row | None: ...

    def transaction(
        self, failure: str, *, durable: bool = True
    ) -> AbstractContextManager[Transaction]: ...

    def session(self, failure: str) -> AbstractContextManager[Transaction]: ...

    def create_tables(self, ddl: str) -> None: ...

    def try_lock(self, name: str) -> bool: ...

    def holds(self, name: str) -> bool: ...

    def held(self, name: str) -> bool: ...

    def unlock(self, name: str) -> None: ...

    def close(self) -> None: ...


def open_snapshot(database: Database) -> Snapshot:
    """The read-only view of the configured database a worker reads through."""
    if database.url is not None:
        from gateway.store.postgres import PostgresSnapshot  # psycopg only where it is used

        return PostgresSnapshot(database.url)
    assert database.path is not None  # a Database without a URL has a path
    return SnapshotEngine(database.path)


class SnapshotEngine(ReadOnlyEngine):
    """A read-only connection to a SQLite claims database; ``snapshot()`` holds one read
    transaction. Used by one thread at a time (a worker's)."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                timeout=30.0,
                check_same_thread=False,  # made by the daemon, used by its one pipeline thread
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path} to read: {exc}") from exc

    @contextmanager
    def snapshot(self) -> Iterator[int]:
        """One read transaction: every read inside sees the same committed state. Yields the
        newest received id in it."""
        try:
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM received").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read database {self.path}: {exc}") from exc
        try:
            yield int(row[0])
        finally:
            if self._db.in_transaction:
                self._db.execute("COMMIT")

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"query failed: {exc}") from exc

    def one(self, sql: str, params: Params = ()) -> Row | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def close(self) -> None:
        self._db.close()


class _RecordingHistory(History):
    """``History``, noting each query's key in ``reads``."""

    def __init__(self, engine: Snapshot, reads: Reads) -> None:
        super().__init__(engine)
        self._reads = reads

    def approved_bill(self, sender_her: str, guid: str) -> StoredBill | None:
        self._reads.exact.add(("guid", sender_her, guid))
        return super().approved_bill(sender_her, guid)

    def practitioner_bills_between(
        self, practitioner_id: str, start: datetime, end: datetime
    ) -> list[HistoricBill]:
        self._reads.ranges.add(("practitioner", practitioner_id, start, end))
        return super().practitioner_bills_between(practitioner_id, start, end)

    def patient_bills_between(
        self, patient_id: str, start: datetime, end: datetime
    ) -> list[HistoricBill]:
        self._reads.ranges.add(("patient", patient_id, start, end))
        return super().patient_bills_between(patient_id, start, end)

    def patient_code_count(
        self, patient_id: str, codes: frozenset[str], start: datetime, end: datetime
    ) -> int:
        self._reads.ranges.add(("patient", patient_id, start, end))
        return super().patient_code_count(patient_id, codes, start, end)


class _RecordingLookups(Intake):
    """``Intake``'s duplicate lookups, noting each key in ``reads``."""

    def __init__(self, engine: Snapshot, reads: Reads) -> None:
        super().__init__(engine)
        self._reads = reads

    def message_by_ebxml_id(self, cpa_id: str, message_id: str) -> PriorMessage | None:
        self._reads.exact.add(("ebxml", cpa_id, message_id))
        return super().message_by_ebxml_id(cpa_id, message_id)

    def message_by_msg_id(self, sender_her: str, msg_id: str) -> PriorMessage | None:
        self._reads.exact.add(("msghead", sender_her, msg_id))
        return super().message_by_msg_id(sender_her, msg_id)


def snapshot_store(engine: Snapshot, reads: Reads) -> Store:
    """A ``Store`` over ``engine`` whose history and duplicate lookups record into ``reads``."""
    store = Store(engine)
    store.history = _RecordingHistory(engine, reads)
    store.intake = _RecordingLookups(engine, reads)
    return store
