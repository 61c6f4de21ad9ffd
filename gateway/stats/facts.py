"""The statistics' view of the bills: one row per bill, every column a number (numpy arrays).

``read_bills`` reads the bills with ids in a range from the claims database in SQL (portable:
``?`` placeholders, ``CASE``, ``LIKE``, correlated sub-selects) and turns them into ``Columns``.
What a row holds, and why:

- ``bill_id``: to find the row again when its decision changes (an override, a credit).
- ``day``: the treatment day (days since 1970-01-01) for the period filter; ``t_md``
  (month * 100 + day) with ``birth_year``/``birth_md`` gives the age on that day, in whole
  years, a birthday on 29 February counting from 1 March in other years.
- ``pid``: the patient as a number from ``stats_patient_numbers`` (the national id stays in the
  claims database; the arrays never hold it).
- ``counted``: effectively approved, not a credit, not credited (``gateway.stats.query``).
- ``ore``, ``takster``: the effective approved amount and the number of takster (sum of antall).
- ``ptype``, ``sender``: codes into the dictionaries of practitioner types and sender HER ids
  (the practice register is joined on sender and day when a table is made).
- ``ktype``: the row of the contact-type classification that matched (0: none).
- ``sex``: 0 unknown, 1 K, 2 M.

The numbering of patients is written before the read: ``number_patients`` inserts the patients
of a range of bills into ``stats_patient_numbers`` (``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.stats.contact_types import Classification
from gateway.store.engine import Reader, Transaction

__all__ = ["COLUMNS", "Columns", "Dictionary", "changed_bill_ids", "number_patients", "read_bills"]

#: Every per-bill column and its dtype.
COLUMNS: dict[str, type[np.generic]] = {
    "bill_id": np.int64,
    "day": np.int32,
    "t_md": np.int16,
    "pid": np.int32,
    "counted": np.bool_,
    "ore": np.int64,
    "takster": np.int32,
    "ptype": np.int16,
    "sender": np.int32,
    "ktype": np.int8,
    "birth_year": np.int16,
    "birth_md": np.int16,
    "sex": np.int8,
}

Array = npt.NDArray[Any]

_EPOCH = np.datetime64("1970-01-01", "D")


@dataclass
class Dictionary:
    """Text values as small integers, in the order first seen (stable across syncs)."""

    values: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {v: i for i, v in enumerate(self.values)}

    def code(self, value: str) -> int:
        found = self._index.get(value)
        if found is None:
            found = len(self.values)
            self.values.append(value)
            self._index[value] = found
        return found


@dataclass
class Columns:
    """Per-bill columns of equal length."""

    arrays: dict[str, Array]

    @classmethod
    def empty(cls) -> Columns:
        return cls({name: np.zeros(0, dtype) for name, dtype in COLUMNS.items()})

    def __len__(self) -> int:
        return len(self.arrays["bill_id"])

    def __getitem__(self, name: str) -> Array:
        return self.arrays[name]

    def append(self, other: Columns) -> Columns:
        return Columns({n: np.concatenate([self.arrays[n], other.arrays[n]]) for n in COLUMNS})

    def update(self, other: Columns) -> None:
        """Overwrite the rows of ``other``'s bills (which must be here) with its values."""
        if not len(other):
            return
        at = np.searchsorted(self.arrays["bill_id"], other.arrays["bill_id"])
        for name in COLUMNS:
            self.arrays[name][at] = other.arrays[name]


_BILLS = """
SELECT b.id, b.dato_tid, n.number, b.kreditering, b.credited_by, b.status, b.approved_ore,
       b.practitioner_type, b.sender_her, b.patient_birth_date, b.patient_sex
FROM bills b JOIN stats_patient_numbers n ON n.patient_id = b.patient_id
"""
# Per bill: the number of takster and the first contact-type row matching one of them.
_LINES = """
SELECT l.bill_id, SUM(l.antall), MIN(<rank>)
FROM bill_lines l JOIN bills b ON b.id = l.bill_id
"""
# The latest override of each bill decides (as in the view bill_status_effective).
_OVERRIDES = """
SELECT o.bill_id, o.decision, o.amount_ore FROM overrides o
WHERE o.id = (SELECT MAX(x.id) FROM overrides x WHERE x.bill_id = o.bill_id)
"""


def number_patients(db: Transaction, after: int, upto: int) -> None:
    """Give every patient of the bills with ``after < id <= upto`` a number (in a transaction
    the caller holds)."""
    db.execute(
        "INSERT INTO stats_patient_numbers(patient_id) SELECT DISTINCT patient_id FROM bills "
        "WHERE id > ? AND id <= ? ON CONFLICT DO NOTHING",
        (after, upto),
    )


def _fetch(
    db: Reader,
    sql: str,
    column: str,
    where: str,
    *,
    after: int | None,
    upto: int | None,
    ids: Sequence[int] | None,
    group: str = "",
) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` for the bills ``after < id <= upto`` or ``ids`` (``column`` is the bill
    id), ordered by bill id."""
    if ids is None:
        return db.rows(
            f"{sql} {where} {column} > ? AND {column} <= ? {group} ORDER BY {column}",
            (after, upto),
        )
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        rows += db.rows(f"{sql} {where} {column} IN ({marks}) {group} ORDER BY {column}", chunk)
    return rows


def read_bills(
    db: Reader,
    classification: Classification,
    ptypes: Dictionary,
    senders: Dictionary,
    *,
    after: int | None = None,
    upto: int | None = None,
    ids: Sequence[int] | None = None,
) -> Columns:
    """The rows of the bills with ``after < id <= upto``, or of the bills ``ids``, by id.

    Three plain reads (the bills, their takst lines grouped per bill, the latest overrides),
    merged by bill id: much faster over millions of bills than a sub-select per bill."""
    bills = _fetch(db, _BILLS, "b.id", "WHERE", after=after, upto=upto, ids=ids)
    if not bills:
        return Columns.empty()
    # The classification holds checked plain codes only (contact_types._safe).
    lines_sql = _LINES.replace("<rank>", classification.rank_sql("b.practitioner_type", "l.code"))
    lines = _fetch(
        db,
        lines_sql,
        "l.bill_id",
        "WHERE l.kind = 'takst' AND",
        group="GROUP BY l.bill_id",
        after=after,
        upto=upto,
        ids=ids,
    )
    overrides = _fetch(db, _OVERRIDES, "o.bill_id", "AND", after=after, upto=upto, ids=ids)
    columns = _columns(bills, ptypes, senders)
    bill_id = columns["bill_id"]
    if lines:
        line_bills, antall, rank = zip(*lines, strict=True)
        at = np.searchsorted(bill_id, np.array(line_bills, dtype=np.int64))
        columns.arrays["takster"][at] = np.array(antall, dtype=np.int64)
        columns.arrays["ktype"][at] = np.array([r or 0 for r in rank], dtype=np.int64)
    approved = np.array([row[5] == "godkjent" for row in bills], dtype=np.bool_)
    if overrides:
        over_bills, decision, amount = zip(*overrides, strict=True)
        at = np.searchsorted(bill_id, np.array(over_bills, dtype=np.int64))
        approved[at] = np.array([d == "godkjent" for d in decision], dtype=np.bool_)
        columns.arrays["ore"][at] = np.array(amount, dtype=np.int64)
    original = np.array([row[3] == 0 and row[4] is None for row in bills], dtype=np.bool_)
    columns.arrays["counted"] = approved & original
    return columns


def _columns(rows: Sequence[tuple[Any, ...]], ptypes: Dictionary, senders: Dictionary) -> Columns:
    (
        bill_id,
        dato_tid,
        pid,
        _kreditering,
        _credited_by,
        _status,
        ore,
        ptype,
        sender,
        birth,
        sex,
    ) = zip(*rows, strict=True)
    days = np.array(dato_tid, dtype="U10").astype("datetime64[D]")
    known = np.array([b is not None for b in birth], dtype=np.bool_)
    births = np.array([b or "1970-01-01" for b in birth], dtype="U10").astype("datetime64[D]")
    birth_year, birth_md = _year_md(births)
    _, t_md = _year_md(days)
    count = len(rows)
    return Columns(
        {
            "bill_id": np.array(bill_id, dtype=np.int64),
            "day": (days - _EPOCH).astype(np.int32),
            "t_md": t_md.astype(np.int16),
            "pid": np.array(pid, dtype=np.int32),
            "counted": np.zeros(count, dtype=np.bool_),
            "ore": np.array(ore, dtype=np.int64),
            "takster": np.zeros(count, dtype=np.int32),
            "ptype": np.array([ptypes.code(p or "") for p in ptype], dtype=np.int16),
            "sender": np.array([senders.code(str(s)) for s in sender], dtype=np.int32),
            "ktype": np.zeros(count, dtype=np.int8),
            "birth_year": np.where(known, birth_year, 0).astype(np.int16),
            "birth_md": np.where(known, birth_md, 0).astype(np.int16),
            "sex": np.array([_SEX.get(s, 0) for s in sex], dtype=np.int8),
        }
    )


_SEX = {"K": 1, "M": 2}


def _year_md(days: Array) -> tuple[Array, Array]:
    """(year, month * 100 + day) of datetime64[D] values."""
    months = days.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month * 100 + day


def changed_bill_ids(
    db: Reader, bills_upto: int, overrides_after: int, overrides_upto: int
) -> list[int]:
    """Bills up to ``bills_upto`` whose counted state or amount may have changed since a sync
    that had seen bills up to ``bills_upto`` and overrides up to ``overrides_after``: those with
    a newer override, and the originals a newer credit consumed."""
    overridden = db.rows(
        "SELECT DISTINCT bill_id FROM overrides WHERE id > ? AND id <= ? AND bill_id <= ?",
        (overrides_after, overrides_upto, bills_upto),
    )
    credited = db.rows(
        "SELECT id FROM bills WHERE credited_by > ? AND id <= ?", (bills_upto, bills_upto)
    )
    return sorted({int(r[0]) for r in overridden} | {int(r[0]) for r in credited})
