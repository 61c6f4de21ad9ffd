"""What the store's modules read and write through: a database engine, its dialect kept inside.

The modules beside this one (intake, history, outbox, ...) hold the SQL and build the records;
an engine runs that SQL. The SQL is written once for every engine: ``?`` placeholders (an engine
whose driver wants ``%s`` translates them), ``INSERT ... RETURNING id`` for a new row's id,
``ON CONFLICT DO NOTHING`` rather than ``INSERT OR IGNORE``, ``CASE WHEN ... THEN 1 ELSE 0 END``
where a flag column takes a condition, and ``FOR UPDATE SKIP LOCKED`` where rows are claimed
(SQLite, whose write transactions are serialised anyway, drops it). What differs between
engines (connecting, pragmas, the schema and its migrations, the transaction, the driver's
exceptions, which become ``StorageError``, and locks across instances) stays in the engine:
``gateway.store.sqlite`` (the embedded default) and ``gateway.store.postgres`` (several
instances on one database). ``gateway.store.database`` opens the one the config names.

Modules that keep tables of their own on the claims database (the payout ledger, the
statistics reference tables, the mail tracker) declare them as ``CREATE ... IF NOT EXISTS``
statements in SQLite's types (``INTEGER PRIMARY KEY``, ``INTEGER``, ``TEXT``, ``BLOB``) and hand
them to ``Engine.create_tables``; PostgreSQL translates them (``gateway.store.ddl``).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from gateway.errors import StorageError

#: One result row, by position in the SELECT list.
Row = tuple[Any, ...]

#: Parameters of one statement, by position of their ``?``.
Params = Sequence[object]

#: The SQL dialects an engine speaks.
Dialect = Literal["sqlite", "postgresql"]


class Reader(Protocol):
    """What reads: an engine (each read on its own; ``StorageError`` if it fails) or an open
    transaction."""

    def rows(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row the statement returns."""
        ...

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row the statement returns, or None."""
        ...


class Transaction(Reader, Protocol):
    """Statements inside one open transaction. A driver error propagates; the engine's
    ``transaction`` rolls back and raises it as a ``StorageError``."""

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement that returns no rows; the number of rows it changed."""
        ...

    def execute_many(self, sql: str, params: Iterable[Params]) -> None:
        """Run one statement once per parameter set."""
        ...

    def insert(self, sql: str, params: Params) -> int:
        """Run an ``INSERT ... RETURNING id`` that adds one row; that row's id."""
        ...

    def serialise(self, name: str) -> None:
        """Wait until no other transaction holds ``name``, then hold it until this one ends:
        transactions that read, decide and write (a payout run) take it so that two instances
        never decide on the same state. SQLite's write transactions are serialised already;
        PostgreSQL takes a transaction-scoped advisory lock."""
        ...


class Engine(Reader, Protocol):
    """A claims database: reads in autocommit, writes in explicit transactions; every method
    may be called from any thread (the engine serialises or pools its connections).

    Several gateway instances may share one database (PostgreSQL; on SQLite, processes on one
    machine). Each engine has an ``instance`` name, unique among the live instances, and holds
    the lock ``instance:<its name>`` while it is open, so that others can tell whether a row it
    claimed is still in live hands (``held``)."""

    @property
    def dialect(self) -> Dialect:
        """The SQL the engine speaks, for the few statements that cannot be written once."""
        ...

    @property
    def instance(self) -> str:
        """This engine's name among the instances on the database: ``host:pid:random``."""
        ...

    def transaction(
        self, failure: str, *, durable: bool = True
    ) -> AbstractContextManager[Transaction]:
        """One write transaction: committed when the block ends, rolled back on any error. A
        driver error becomes ``StorageError(f"{failure}: {error}")``; other exceptions pass
        unchanged. SQLite takes the write lock at its start (``BEGIN IMMEDIATE``); PostgreSQL
        runs it at READ COMMITTED, so a transaction that must not interleave with another
        instance's takes ``Transaction.serialise``. ``durable=False``: bookkeeping whose loss
        in a power cut is harmless; its commit does not wait for the disk."""
        ...

    def session(self, failure: str) -> AbstractContextManager[Transaction]:
        """Statements on one connection, each committed on its own (no write transaction held):
        for work that needs the connection's state across statements, such as a temporary
        table (a large statistics query). Errors become ``StorageError`` as in a transaction."""
        ...

    def create_tables(self, ddl: str) -> None:
        """Make a module's own tables: ``CREATE TABLE/INDEX ... IF NOT EXISTS`` statements in
        SQLite's types, translated where the engine needs it. Runs once per engine and DDL text;
        safe when several instances start together."""
        ...

    def try_lock(self, name: str) -> bool:
        """Take the lock ``name`` if nobody holds it: True if this engine holds it now. It is
        held until ``unlock``, ``close``, or the death of this process (or, on PostgreSQL, the
        loss of its connection: see ``holds``)."""
        ...

    def holds(self, name: str) -> bool:
        """Whether this engine still holds ``name`` (False once its lock connection is lost)."""
        ...

    def held(self, name: str) -> bool:
        """Whether anyone (this engine included) holds ``name``."""
        ...

    def unlock(self, name: str) -> None:
        """Give up ``name`` (nothing happens if it is not held)."""
        ...

    def close(self) -> None: ...


def new_instance_name() -> str:
    """A name for an engine among the instances on one database: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def instance_lock(instance: str) -> str:
    """The name of the lock instance ``instance`` holds while it is open."""
    return f"instance:{instance}"


class ReadOnlyEngine:
    """What a read-only view of the store (a worker's snapshot) has of ``Engine`` beyond its
    reads: every write is refused (``StorageError``), and it holds no locks. A subclass adds
    ``dialect``, ``rows``, ``one`` and ``close``."""

    instance = "read-only"

    def transaction(
        self, failure: str, *, durable: bool = True
    ) -> AbstractContextManager[Transaction]:
        raise StorageError(f"{failure}: this view of the store is read-only")

    def session(self, failure: str) -> AbstractContextManager[Transaction]:
        raise StorageError(f"{failure}: this view of the store is read-only")

    def create_tables(self, ddl: str) -> None:
        raise StorageError("cannot create tables: this view of the store is read-only")

    def try_lock(self, name: str) -> bool:
        return False

    def holds(self, name: str) -> bool:
        return False

    def held(self, name: str) -> bool:
        return False

    def unlock(self, name: str) -> None:
        return None
