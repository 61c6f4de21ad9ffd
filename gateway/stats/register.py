"""The practice register as statistics dimensions: who treated, looked up per bill and day.

A bill is joined to the register period in force (``practices_in_force``) of its sender HER id
that covers its treatment day. From it come:

- ``praksistype``: the practice type (fastlege, legevakt, fysioterapeut, ...); a bill whose sender
  is not in the register keeps the practitioner type the claim gave (lege, tannlege, ...).
- ``fagomrade``: the practice's main specialty; without one (or without a register entry) the
  practitioner type, so that every contact has a field.
- ``praksiskommune``: the practice's municipality, ``ukjent`` without a register entry.
- ``driftsavtale``: ``ja`` when the practice's operating agreement (driftsavtale) covers the
  treatment day, ``nei`` when it is in the register without one, ``ukjent`` otherwise. The
  published physiotherapy statistics count only practices with one (``--only driftsavtale=ja``).

The lookup is vectorised: the periods sorted by (sender, first day), one ``searchsorted`` for all
rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from gateway.errors import StorageError
from gateway.stats.facts import Array, Dictionary
from gateway.store.engine import Reader

__all__ = ["Register", "read_register"]

_DAY_BITS = 20  # treatment days since 1970 stay below 2**20 until the year 4840
_OPEN = (date(9999, 12, 31) - date(1970, 1, 1)).days


def _day(text: object, default: int) -> int:
    return default if text is None else (date.fromisoformat(str(text)) - date(1970, 1, 1)).days


@dataclass(frozen=True)
class Register:
    """Register periods of the senders the facts know, sorted by (sender, first day)."""

    starts: Array  # (sender << _DAY_BITS) | first day
    sender: Array
    last: Array  # last day of the period (inclusive)
    practice_type: list[str]
    fagomrade: list[str | None]
    kommune: list[str | None]
    agreement_from: Array
    agreement_to: Array  # -1 when the period has no operating agreement

    def period_of(self, sender: Array, day: Array) -> Array:
        """Index of the period in force per row, -1 where none."""
        if not len(self.starts):
            return np.full(len(sender), -1, dtype=np.int64)
        keys = (sender.astype(np.int64) << _DAY_BITS) | day.astype(np.int64)
        found = np.searchsorted(self.starts, keys, side="right") - 1
        safe = np.maximum(found, 0)
        hit = (found >= 0) & (self.sender[safe] == sender) & (day <= self.last[safe])
        return np.where(hit, found, -1)


def read_register(db: Reader, senders: Dictionary) -> Register:
    """The register in force, for the senders in ``senders`` (others cannot match a bill)."""
    try:
        rows = db.rows(
            "SELECT her_id, practice_type, fagomrade, municipality, valid_from, valid_to, "
            "operating_agreement_from, operating_agreement_to FROM practices_in_force"
        )
    except StorageError:  # a store from before the register
        rows = []
    known = {value: code for code, value in enumerate(senders.values)}
    periods = sorted((known[str(r[0])], _day(r[4], 0), r) for r in rows if str(r[0]) in known)
    return Register(
        starts=np.array([(s << _DAY_BITS) | d for s, d, _ in periods], dtype=np.int64),
        sender=np.array([s for s, _, _ in periods], dtype=np.int64),
        last=np.array([_day(r[5], _OPEN) for _, _, r in periods], dtype=np.int64),
        practice_type=[str(r[1]) for _, _, r in periods],
        fagomrade=[None if r[2] is None else str(r[2]) for _, _, r in periods],
        kommune=[None if r[3] is None else str(r[3]) for _, _, r in periods],
        agreement_from=np.array([_day(r[6], 0) for _, _, r in periods], dtype=np.int64),
        agreement_to=np.array(
            [-1 if r[6] is None else _day(r[7], _OPEN) for _, _, r in periods], dtype=np.int64
        ),
    )
