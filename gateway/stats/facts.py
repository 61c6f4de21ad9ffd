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

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.stats.contact_types import Classification

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


_SELECT = """
SELECT b.id, b.dato_tid, n.number,
       CASE WHEN b.kreditering = 0 AND b.credited_by IS NULL AND e.status = 'godkjent'
            THEN 1 ELSE 0 END,
       e.approved_ore, b.practitioner_type, b.sender_her, b.patient_birth_date, b.patient_sex,
       (SELECT COALESCE(SUM(l.antall), 0) FROM bill_lines l
         WHERE l.bill_id = b.id AND l.kind = 'takst'),
       (SELECT MIN(<rank>) FROM bill_lines l WHERE l.bill_id = b.id AND l.kind = 'takst')
FROM bills b
JOIN bill_status_effective e ON e.bill_id = b.id
JOIN stats_patient_numbers n ON n.patient_id = b.patient_id
"""


def _select(classification: Classification) -> str:
    # The classification holds checked plain codes only (contact_types._safe).
    return _SELECT.replace("<rank>", classification.rank_sql("b.practitioner_type", "l.code"))


def number_patients(db: sqlite3.Connection, after: int, upto: int) -> None:
    """Give every patient of the bills with ``after < id <= upto`` a number (in a transaction
    the caller holds)."""
    db.execute(
        "INSERT INTO stats_patient_numbers(patient_id) SELECT DISTINCT patient_id FROM bills "
        "WHERE id > ? AND id <= ? ON CONFLICT DO NOTHING",
        (after, upto),
    )


def read_bills(
    db: sqlite3.Connection,
    classification: Classification,
    ptypes: Dictionary,
    senders: Dictionary,
    *,
    after: int | None = None,
    upto: int | None = None,
    ids: Sequence[int] | None = None,
) -> Columns:
    """The rows of the bills with ``after < id <= upto``, or of the bills ``ids``, by id."""
    base = _select(classification)
    if ids is not None:
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            rows += db.execute(base + f"WHERE b.id IN ({marks}) ORDER BY b.id", chunk).fetchall()
    else:
        rows = db.execute(
            base + "WHERE b.id > ? AND b.id <= ? ORDER BY b.id", (after, upto)
        ).fetchall()
    return _columns(rows, ptypes, senders)


def _columns(rows: Sequence[tuple[Any, ...]], ptypes: Dictionary, senders: Dictionary) -> Columns:
    if not rows:
        return Columns.empty()
    (bill_id, dato_tid, pid, counted, ore, ptype, sender, birth, sex, takster, rank) = zip(
        *rows, strict=True
    )
    days = np.array([str(t)[:10] for t in dato_tid], dtype="datetime64[D]")
    t_md = np.array([_md(str(t)) for t in dato_tid], dtype=np.int16)
    birth_year = np.array([_year(b) for b in birth], dtype=np.int16)
    birth_md = np.array([_md(b) if b else 0 for b in birth], dtype=np.int16)
    return Columns(
        {
            "bill_id": np.array(bill_id, dtype=np.int64),
            "day": (days - _EPOCH).astype(np.int32),
            "t_md": t_md,
            "pid": np.array(pid, dtype=np.int32),
            "counted": np.array(counted, dtype=np.bool_),
            "ore": np.array(ore, dtype=np.int64),
            "takster": np.array(takster, dtype=np.int32),
            "ptype": np.array([ptypes.code(p or "") for p in ptype], dtype=np.int16),
            "sender": np.array([senders.code(str(s)) for s in sender], dtype=np.int32),
            "ktype": np.array([r or 0 for r in rank], dtype=np.int8),
            "birth_year": birth_year,
            "birth_md": birth_md,
            "sex": np.array([_SEX.get(s, 0) for s in sex], dtype=np.int8),
        }
    )


_SEX = {"K": 1, "M": 2}


def _md(text: str) -> int:
    return int(text[5:7]) * 100 + int(text[8:10])


def _year(text: object) -> int:
    return int(str(text)[:4]) if text else 0


def changed_bill_ids(
    db: sqlite3.Connection, bills_upto: int, overrides_after: int, overrides_upto: int
) -> list[int]:
    """Bills up to ``bills_upto`` whose counted state or amount may have changed since a sync
    that had seen bills up to ``bills_upto`` and overrides up to ``overrides_after``: those with
    a newer override, and the originals a newer credit consumed."""
    overridden: Iterable[tuple[int]] = db.execute(
        "SELECT DISTINCT bill_id FROM overrides WHERE id > ? AND id <= ? AND bill_id <= ?",
        (overrides_after, overrides_upto, bills_upto),
    )
    credited: Iterable[tuple[int]] = db.execute(
        "SELECT id FROM bills WHERE credited_by > ? AND id <= ?", (bills_upto, bills_upto)
    )
    return sorted({int(r[0]) for r in overridden} | {int(r[0]) for r in credited})
