"""Stored values and records: how a moment is written, how a row becomes a record.

A record read from the database is declared once as ``Columns``: each field of the record with
the SQL expression that gives it and the conversion of the stored value. The SELECT list and the
conversion come from the same declaration, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from gateway.store.engine import Params, Reader, Row

_R = TypeVar("_R")

#: Turns one stored value into the record's field value.
Convert = Callable[[Any], object]


def stored_moment(at: datetime | None = None) -> str:
    """A moment (default now) as the stored UTC text; one format, so text order is time order."""
    return (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def moment(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def opt_moment(value: object) -> datetime | None:
    return None if value is None else moment(value)


def opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def marks(count: int) -> str:
    """``?, ?, ...``: the placeholders of an ``IN (...)`` list of ``count`` values."""
    return ", ".join("?" for _ in range(count))


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a record: its name, the SQL expression that gives it, its conversion."""

    name: str
    convert: Convert
    sql: str


def field(name: str, convert: Convert = str, sql: str | None = None) -> Field:
    """A field read from the column of the same name unless ``sql`` says otherwise."""
    return Field(name, convert, name if sql is None else sql)


@dataclass(frozen=True, slots=True)
class Columns(Generic[_R]):
    """A record type and the fields it is read from, in SELECT order."""

    record: Callable[..., _R]
    fields: tuple[Field, ...]

    @property
    def select(self) -> str:
        """The SELECT list: ``a, b, length(c)``."""
        return ", ".join(f.sql for f in self.fields)

    def read(self, row: Row) -> _R:
        """The record of one row selected with ``select``."""
        return self.record(
            **{f.name: f.convert(value) for f, value in zip(self.fields, row, strict=True)}
        )

    def read_all(self, rows: Sequence[Row]) -> list[_R]:
        return [self.read(row) for row in rows]

    def fetch(self, reader: Reader, rest: str, params: Params = ()) -> list[_R]:
        """The records of ``SELECT {select} {rest}`` (``rest``: FROM, WHERE, ORDER BY ...)."""
        return self.read_all(reader.rows(f"SELECT {self.select} {rest}", params))

    def fetch_one(self, reader: Reader, rest: str, params: Params = ()) -> _R | None:
        """The record of the first row of ``SELECT {select} {rest}``, or None."""
        found = reader.one(f"SELECT {self.select} {rest}", params)
        return None if found is None else self.read(found)


def filtered(
    conditions: Sequence[tuple[str, object | None]], order_by: str, limit: int | None
) -> tuple[str, list[object]]:
    """``WHERE ... ORDER BY ... [LIMIT ?]`` and its parameters, from (condition with one ``?``,
    value) pairs; a pair whose value is None is left out."""
    chosen = [(condition, value) for condition, value in conditions if value is not None]
    where = " AND ".join(condition for condition, _ in chosen) or "TRUE"
    params: list[object] = [value for _, value in chosen]
    sql = f"WHERE {where} ORDER BY {order_by}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params
