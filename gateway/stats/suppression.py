"""Small-cell suppression (prikking) of a statistics table with its marginal totals.

1. **Primary**: every cell, interior or total, with fewer than ``MIN_PERSONS`` distinct persons.
2. **Complementary**, classic heuristic: a *line* is a total together with the cells it sums
   along one dimension (the other key parts fixed). A line with exactly one suppressed cell would
   give that cell away (total minus the published members), so the smallest published member
   (fewest persons, then smallest value) is suppressed too, or the total when no member is left.
   Repeated over every line of every dimension until nothing changes.
3. **Verification**, exact: the published lines form a linear system (each total = sum of its
   members). After substituting the published values, a suppressed cell is recomputable exactly
   when its unit vector lies in the row space of the remaining system over the suppressed cells.
   That is decided with sparse Gauss-Jordan elimination over ``Fraction`` (a fully reduced row
   equal to the unit vector). Any such cell gets one more neighbour suppressed (the nearest line
   that still has a published cell) and steps 2-3 run again, until no cell is determined. It
   always ends: with every cell suppressed nothing is determined, because every total has at
   least one interior cell beneath it.

Suppressed cells stay in their totals (the totals are computed from all bills). The pattern is
computed from the additive structure whatever the measure: for ``pasienter`` (distinct persons)
and ``kontakter-per-pasient`` (a ratio) the totals are not exact sums, so treating them as sums
protects at least as much as needed.

The legend says how many cells were suppressed and why, never a value.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict, deque
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from fractions import Fraction

from gateway.stats.model import MIN_PERSONS, TOTAL, Cell, Suppression

__all__ = ["Line", "determined_cells", "legend", "lines_of", "suppress"]

Key = tuple[str, ...]
#: A line: the index of its total and the indexes of the cells it sums.
Line = tuple[int, tuple[int, ...]]


def lines_of(keys: Sequence[Key]) -> list[Line]:
    """Every line of the table: for each dimension and each key with that part summed out
    (``TOTAL``) that is present, the cells that differ from it only in that part. Lines whose
    total is not in the table are not published equations and are left out."""
    index = {key: i for i, key in enumerate(keys)}
    groups: dict[tuple[int, Key], list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        for dim, part in enumerate(key):
            if part != TOTAL:
                groups[(dim, (*key[:dim], TOTAL, *key[dim + 1 :]))].append(i)
    lines: list[Line] = []
    for (_dim, total_key), members in groups.items():
        total = index.get(total_key)
        if total is not None:
            lines.append((total, tuple(members)))
    return lines


def determined_cells(lines: Iterable[Line], suppressed: set[int]) -> set[int]:
    """The suppressed cells whose value follows exactly from the published cells and lines.

    Each line gives the equation ``total - sum(members) = 0``; published cells are constants, so
    only the suppressed cells are unknowns. Sparse Gauss-Jordan keeps every pivot row fully
    reduced (no other pivot column in it); an unknown is determined iff its pivot row is its unit
    vector (every null-space vector is then zero there)."""
    pivots: dict[int, dict[int, Fraction]] = {}
    # Non-pivot column -> pivot columns whose rows contain it.
    occurs: dict[int, set[int]] = defaultdict(set)
    one = Fraction(1)
    for total, members in lines:
        row: dict[int, Fraction] = {}
        if total in suppressed:
            row[total] = one
        for m in members:
            if m in suppressed:
                row[m] = row.get(m, Fraction(0)) - one
        for col in [c for c in row if c in pivots]:
            factor = row.get(col)
            if factor:
                _add_scaled(row, pivots[col], -factor)
        if not row:
            continue  # dependent on the equations seen so far
        pivot = min(row, key=lambda c: (len(occurs.get(c, ())), c))
        scale = row[pivot]
        if scale != 1:
            row = {c: v / scale for c, v in row.items()}
        for other in list(occurs.pop(pivot, ())):
            target = pivots[other]
            before = set(target)
            _add_scaled(target, row, -target[pivot])
            after = set(target)
            for col in before - after:
                if col != pivot:
                    occurs[col].discard(other)
            for col in after - before:
                occurs[col].add(other)
        pivots[pivot] = row
        for col in row:
            if col != pivot:
                occurs[col].add(pivot)
    return {p for p, row in pivots.items() if len(row) == 1}


def _add_scaled(target: dict[int, Fraction], row: dict[int, Fraction], factor: Fraction) -> None:
    for col, value in row.items():
        new = target.get(col, Fraction(0)) + factor * value
        if new:
            target[col] = new
        else:
            target.pop(col, None)


def _rank(cell: Cell) -> tuple[int, Decimal, Key]:
    return (cell.persons, cell.value if cell.value is not None else Decimal(0), cell.key)


def suppress(cells: Sequence[Cell], hidden: Collection[int] = ()) -> tuple[Cell, ...]:
    """The cells with primary and complementary suppression applied (``value`` None and
    ``suppressed`` set); the order is kept. ``hidden`` are indexes of cells that are never
    published whatever their size (they are marked primary): the complementary suppression
    protects them like any other."""
    keys = [c.key for c in cells]
    lines = lines_of(keys)
    lines_by_cell: dict[int, list[int]] = defaultdict(list)
    for number, (total, members) in enumerate(lines):
        lines_by_cell[total].append(number)
        for m in members:
            lines_by_cell[m].append(number)

    primary = {i for i, c in enumerate(cells) if c.persons < MIN_PERSONS} | set(hidden)
    suppressed = set(primary)

    def smallest_published(line: Line) -> int | None:
        total, members = line
        candidates = [m for m in members if m not in suppressed]
        if candidates:
            return min(candidates, key=lambda i: _rank(cells[i]))
        return None if total in suppressed else total

    def fixed_point(queue: deque[int]) -> None:
        queued = set(queue)
        while queue:
            number = queue.popleft()
            queued.discard(number)
            total, members = lines[number]
            hidden = (total in suppressed) + sum(1 for m in members if m in suppressed)
            if hidden != 1:
                continue
            pick = smallest_published(lines[number])
            if pick is None:  # pragma: no cover - a line of one hidden cell has another cell
                continue
            suppressed.add(pick)
            for other in lines_by_cell[pick]:
                if other not in queued:
                    queued.add(other)
                    queue.append(other)

    def nearest_published(start: int) -> int | None:
        """Breadth-first over lines through suppressed cells: the smallest published cell of
        the nearest line that has one."""
        seen_cells, seen_lines = {start}, set()
        frontier = [start]
        while frontier:
            found: list[int] = []
            following: list[int] = []
            for cell in frontier:
                for number in lines_by_cell[cell]:
                    if number in seen_lines:
                        continue
                    seen_lines.add(number)
                    pick = smallest_published(lines[number])
                    if pick is not None:
                        found.append(pick)
                    total, members = lines[number]
                    for other in (total, *members):
                        if other in suppressed and other not in seen_cells:
                            seen_cells.add(other)
                            following.append(other)
            if found:
                return min(found, key=lambda i: _rank(cells[i]))
            frontier = following
        return None

    fixed_point(deque(range(len(lines))))
    while True:
        determined = determined_cells(lines, suppressed)
        if not determined:
            break
        added: list[int] = []
        for hidden_cell in sorted(determined):
            pick = nearest_published(hidden_cell)
            if pick is not None and pick not in suppressed:
                suppressed.add(pick)
                added.append(pick)
        if not added:  # pragma: no cover - cannot happen (see the module docstring)
            raise AssertionError("suppression could not hide a determined cell")
        fixed_point(deque(sorted({n for a in added for n in lines_by_cell[a]})))

    result: list[Cell] = []
    for i, cell in enumerate(cells):
        if i in primary:
            result.append(dataclasses.replace(cell, value=None, suppressed=Suppression.PRIMARY))
        elif i in suppressed:
            result.append(
                dataclasses.replace(cell, value=None, suppressed=Suppression.COMPLEMENTARY)
            )
        else:
            result.append(dataclasses.replace(cell, suppressed=None))
    return tuple(result)


def _cells(n: int) -> str:
    return "1 celle" if n == 1 else f"{n} celler"


def legend(cells: Iterable[Cell]) -> tuple[str, ...]:
    """Norwegian lines on what was suppressed and why: counts only, never a value."""
    reasons = [c.suppressed for c in cells]
    primary = reasons.count(Suppression.PRIMARY)
    complementary = reasons.count(Suppression.COMPLEMENTARY)
    if not primary and not complementary:
        return ("Ingen celler er prikket.",)
    return (
        f"Celler med færre enn {MIN_PERSONS} personer er ikke publisert (primærprikket): "
        f"{_cells(primary)}.",
        f"{_cells(complementary)} er skjult for at de ikke "
        "skal kunne regnes ut fra summene (sekundærprikket).",
        "Prikkede celler er likevel med i summene.",
    )
