"""What the store's modules read and write through: a database engine, its dialect kept inside.

The modules beside this one (intake, history, outbox, ...) hold the SQL and build the records;
an engine runs that SQL. The SQL is written once for every engine: ``?`` placeholders (an engine
whose driver wants ``%s`` translates them), ``INSERT ... RETURNING id`` for a new row's id,
``ON CONFLICT DO NOTHING`` rather than ``INSERT OR IGNORE``. What differs between engines
(connecting, pragmas, the schema and its migrations, the transaction, the driver's exceptions,
which become ``StorageError``) stays in the engine: ``gateway.store.sqlite`` today.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

#: One result row, by position in the SELECT list.
Row = tuple[Any, ...]

#: Parameters of one statement, by position of their ``?``.
Params = Sequence[object]


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


class Engine(Reader, Protocol):
    """A claims database: reads in autocommit, writes in explicit transactions, used from one
    thread at a time per call (the engine serialises its own connection)."""

    def transaction(self, failure: str) -> AbstractContextManager[Transaction]:
        """One write transaction (taking the write lock at its start): committed when the
        block ends, rolled back on any error. A driver error becomes
        ``StorageError(f"{failure}: {error}")``; other exceptions pass unchanged."""
        ...

    def close(self) -> None: ...
