"""Paper claims in the statistics: their refunds count in ``refusjon`` where a table can place them.

A paper claim is kept only as an aggregate (``paper_claims``: the refund paid per submission, per
practice and period; no patient), so it can be counted only by what describes the practice: in a
``refusjon`` table whose dimensions are all practice dimensions (``praksistype``, ``fagomrade``,
``praksiskommune``, or none: the grand total), and only without filters. Tables by the patient's
residence, age or sex, contacts, patients and takster never include them (the seed: "only
aggregated data such as refund paid per submission"). A submission belongs to the period its
first treatment day falls in; its practice dimensions come from the register at that day, else
the practitioner type registered with the claim.

A cell with electronic bills keeps their persons (so a small cell is still suppressed: the paper
amount must not help reveal it); a cell of paper refunds only describes no person, and is
published.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from gateway.errors import StorageError
from gateway.stats.model import MIN_PERSONS, TOTAL
from gateway.stats.periods import Period
from gateway.stats.query import UNKNOWN, Aggregate
from gateway.stats.register import Register
from gateway.store.engine import Reader

__all__ = ["PAPER_DIMENSIONS", "add_paper", "counts_paper"]

PAPER_DIMENSIONS = frozenset({"praksistype", "fagomrade", "praksiskommune"})


def counts_paper(measure: str, dims: Sequence[str], filtered: bool) -> bool:
    """Whether paper refunds belong in this table."""
    return measure == "refusjon" and not filtered and set(dims) <= PAPER_DIMENSIONS


def _values(
    register: Register, senders: dict[str, int], her: str, ptype: str | None, day: date
) -> dict[str, str]:
    code = senders.get(her)
    days = (day - date(1970, 1, 1)).days
    for i in range(len(register.practice_type)):
        if code is not None and int(register.sender[i]) == code:
            start = int(register.starts[i]) & ((1 << 20) - 1)
            if start <= days <= int(register.last[i]):
                return {
                    "praksistype": register.practice_type[i],
                    "fagomrade": register.fagomrade[i] or ptype or UNKNOWN,
                    "praksiskommune": register.kommune[i] or UNKNOWN,
                }
    return {
        "praksistype": ptype or UNKNOWN,
        "fagomrade": ptype or UNKNOWN,
        "praksiskommune": UNKNOWN,
    }


def add_paper(
    db: Reader,
    aggregates: list[Aggregate],
    register: Register,
    senders: Sequence[str],
    dims: Sequence[str],
    period: Period,
) -> list[Aggregate]:
    """``aggregates`` with the period's paper refunds added to every cell they fall in."""
    try:
        rows = db.rows(
            "SELECT practice_her, practice_type, period_from, refund_ore FROM paper_claims "
            "WHERE period_from >= ? AND period_from < ?",
            (period.start.isoformat(), period.end.isoformat()),
        )
    except StorageError:  # a store from before paper claims
        return aggregates
    if not rows:
        return aggregates
    codes = {her: i for i, her in enumerate(senders)}
    paper: dict[tuple[str, ...], int] = defaultdict(int)
    n = len(dims)
    for her, ptype, first, refund in rows:
        values = _values(register, codes, str(her), ptype, date.fromisoformat(str(first)))
        full = tuple(values[d] for d in dims)
        for kept in itertools.product((True, False), repeat=n):
            paper[tuple(p if k else TOTAL for p, k in zip(full, kept, strict=True))] += int(refund)
    cells = {a.key: a for a in aggregates}
    for key, ore in paper.items():
        cell = cells.get(key)
        if cell is None or cell.kontakter == 0:
            # Paper refunds only: no person behind the cell to protect.
            cells[key] = Aggregate(key, 0, ore + (cell.ore if cell else 0), 0, MIN_PERSONS)
        else:
            cells[key] = Aggregate(key, cell.kontakter, cell.ore + ore, cell.takster, cell.persons)
    return list(cells.values())
