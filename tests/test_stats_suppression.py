"""Small-cell suppression: unit tests of the heuristic and legend, and a property test with an
independent checker (dense rank computation over fractions) that nothing suppressed can be
recomputed from what is published."""

from __future__ import annotations

import itertools
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.stats.model import MIN_PERSONS, TOTAL, Cell, Suppression
from gateway.stats.suppression import determined_cells, legend, lines_of, suppress

Key = tuple[str, ...]


# --- an independent checker -------------------------------------------------------------------


def _rank(rows: list[list[Fraction]]) -> int:
    """Rank by plain dense Gaussian elimination."""
    matrix = [row[:] for row in rows]
    rank = 0
    columns = len(matrix[0]) if matrix else 0
    for col in range(columns):
        pivot = next((r for r in range(rank, len(matrix)) if matrix[r][col] != 0), None)
        if pivot is None:
            continue
        matrix[rank], matrix[pivot] = matrix[pivot], matrix[rank]
        for r in range(len(matrix)):
            if r != rank and matrix[r][col] != 0:
                factor = matrix[r][col] / matrix[rank][col]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[rank], strict=True)]
        rank += 1
    return rank


def recomputable(cells: list[Cell]) -> set[Key]:
    """Suppressed cells whose value follows from the published cells: x_k is determined iff
    dropping column k from the system over the unknowns lowers its rank."""
    by_key = {c.key: c for c in cells}
    hidden = [c.key for c in cells if c.value is None]
    if not hidden:
        return set()
    column = {k: i for i, k in enumerate(hidden)}
    rows: list[list[Fraction]] = []
    for total in by_key:
        for dim, part in enumerate(total):
            if part != TOTAL:
                continue
            members = [
                k
                for k in by_key
                if k[dim] != TOTAL and all(k[j] == total[j] for j in range(len(k)) if j != dim)
            ]
            if not members:
                continue
            row = [Fraction(0)] * len(hidden)
            if total in column:
                row[column[total]] += 1
            for m in members:
                if m in column:
                    row[column[m]] -= 1
            if any(row):
                rows.append(row)
    if not rows:
        return set()
    full = _rank(rows)
    found = set()
    for key, i in column.items():
        without = [row[:i] + row[i + 1 :] for row in rows]
        if _rank(without) == full - 1:
            found.add(key)
    return found


# --- random tables ----------------------------------------------------------------------------


@st.composite
def tables(draw: st.DrawFn) -> list[Cell]:
    """An interior (a random subset of a small cube) and every marginal total present."""
    dims = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, {1: 6, 2: 4, 3: 3}[dims]), min_size=dims, max_size=dims))
    product = list(itertools.product(*(["abcdef"[i] for i in range(n)] for n in sizes)))
    keys = draw(st.lists(st.sampled_from(product), min_size=1, max_size=len(product), unique=True))
    interior = {
        k: (draw(st.integers(1, 14)), Decimal(draw(st.integers(0, 500)))) for k in sorted(keys)
    }
    cells = [Cell(k, v, p) for k, (p, v) in interior.items()]
    totals: dict[Key, list[Key]] = {}
    for key in interior:
        for mask in itertools.product((False, True), repeat=len(key)):
            if any(mask):
                total = tuple(TOTAL if m else part for part, m in zip(key, mask, strict=True))
                totals.setdefault(total, []).append(key)
    for total, members in sorted(totals.items()):
        persons = [interior[m][0] for m in members]
        # distinct persons of a total: at least its largest cell, at most the sum
        p = draw(st.integers(max(persons), sum(persons)))
        cells.append(Cell(total, sum((interior[m][1] for m in members), Decimal(0)), p))
    return cells


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_nothing_small_is_published_or_recomputable(cells: list[Cell]) -> None:
    result = list(suppress(cells))
    assert [c.key for c in result] == [c.key for c in cells]
    for before, after in zip(cells, result, strict=True):
        assert after.persons == before.persons
        if after.suppressed is None:
            assert after.value == before.value
            assert after.persons >= MIN_PERSONS
        else:
            assert after.value is None
            assert (after.suppressed is Suppression.PRIMARY) == (before.persons < MIN_PERSONS)
    assert recomputable(result) == set()


@settings(max_examples=150, deadline=None)
@given(tables(), st.data())
def test_determined_cells_agrees_with_the_dense_checker(
    cells: list[Cell], data: st.DataObject
) -> None:
    hidden = data.draw(st.sets(st.integers(0, len(cells) - 1)))
    masked = [Cell(c.key, None if i in hidden else c.value, c.persons) for i, c in enumerate(cells)]
    found = determined_cells(lines_of([c.key for c in cells]), hidden)
    assert {cells[i].key for i in found} == recomputable(masked)


# --- unit tests -------------------------------------------------------------------------------


def _cell(key: str, persons: int, value: int) -> Cell:
    return Cell(tuple(key.split("|")), Decimal(value), persons)


def test_one_small_cell_takes_the_smallest_neighbour_along() -> None:
    cells = [_cell("a", 3, 30), _cell("b", 10, 100), _cell("c", 20, 90), _cell("*", 33, 220)]
    result = {c.key: c for c in suppress(cells)}
    assert result[("a",)].suppressed is Suppression.PRIMARY
    assert result[("b",)].suppressed is Suppression.COMPLEMENTARY  # fewest persons left
    assert result[("c",)].value == Decimal(90)
    assert result[("*",)].value == Decimal(220)  # included the suppressed cells
    assert legend(result.values()) == (
        "Celler med færre enn 5 personer er ikke publisert (primærprikket): 1 celle.",
        "1 celle er skjult for at de ikke skal kunne regnes ut fra summene (sekundærprikket).",
        "Prikkede celler er likevel med i summene.",
    )


def test_ties_on_persons_are_broken_by_value() -> None:
    cells = [_cell("a", 2, 5), _cell("b", 8, 90), _cell("c", 8, 40), _cell("*", 18, 135)]
    result = {c.key: c.suppressed for c in suppress(cells)}
    assert result == {
        ("a",): Suppression.PRIMARY,
        ("b",): None,
        ("c",): Suppression.COMPLEMENTARY,
        ("*",): None,
    }


def test_a_line_with_only_the_hidden_cell_left_hides_its_total() -> None:
    cells = [_cell("a", 2, 5), _cell("b", 9, 7), _cell("*", 11, 12)]
    result = {c.key: c.suppressed for c in suppress(cells)}
    # b hidden to protect a; then nothing published is left in the line but the total, and
    # a + b with the total published reveals nothing about either alone: the total stays.
    assert result == {("a",): Suppression.PRIMARY, ("b",): Suppression.COMPLEMENTARY, ("*",): None}


def test_two_dimensions_reach_a_fixed_point_and_verify() -> None:
    # 2 x 2 with one small cell: the classic rectangle of four hidden cells.
    interior = {("x", "1"): 2, ("x", "2"): 10, ("y", "1"): 10, ("y", "2"): 10}
    cells = [Cell(k, Decimal(p * 10), p) for k, p in interior.items()]
    cells += [
        Cell(("x", "*"), Decimal(120), 12),
        Cell(("y", "*"), Decimal(200), 20),
        Cell(("*", "1"), Decimal(120), 12),
        Cell(("*", "2"), Decimal(200), 20),
        Cell(("*", "*"), Decimal(320), 32),
    ]
    result = {c.key: c.suppressed for c in suppress(cells)}
    hidden = {k for k, s in result.items() if s is not None}
    assert hidden == {("x", "1"), ("x", "2"), ("y", "1"), ("y", "2")}
    assert result[("x", "1")] is Suppression.PRIMARY
    assert recomputable([c for c in suppress(cells)]) == set()


def test_verification_catches_what_the_line_heuristic_misses() -> None:
    # A 3 x 3 table with margins in which every line hides 0 or at least 2 cells, yet the
    # published cells give "a|a" away: only the linear algebra sees it.
    keys = sorted(
        {
            (r if i else TOTAL, c if j else TOTAL)
            for r in "abc"
            for c in "abc"
            for i in (0, 1)
            for j in (0, 1)
        }
    )
    hidden_keys = {
        ("*", "*"), ("*", "a"), ("a", "a"), ("a", "b"), ("a", "c"),
        ("b", "b"), ("b", "c"), ("c", "*"), ("c", "a"),
    }  # fmt: skip
    lines = lines_of(keys)
    hidden = {keys.index(k) for k in hidden_keys}
    for total, members in lines:
        assert (total in hidden) + sum(m in hidden for m in members) != 1
    assert {keys[i] for i in determined_cells(lines, hidden)} == {("a", "a")}
    masked = [Cell(k, None if k in hidden_keys else Decimal(1), 9) for k in keys]
    assert recomputable(masked) == {("a", "a")}
    # and suppress() does not leave such a pattern behind: persons 9 everywhere except a|a
    cells = [Cell(k, Decimal(10), 1 if k == ("a", "a") else 9) for k in keys]
    assert recomputable(list(suppress(cells))) == set()


def test_legend_without_suppression() -> None:
    cells = [_cell("a", 5, 1), _cell("*", 5, 1)]
    result = suppress(cells)
    assert all(c.suppressed is None for c in result)
    assert legend(result) == ("Ingen celler er prikket.",)


def test_small_grand_total_is_suppressed_with_everything() -> None:
    cells = [_cell("a", 1, 1), _cell("b", 2, 1), _cell("*", 3, 2)]
    result = suppress(cells)
    assert all(c.suppressed is Suppression.PRIMARY for c in result)
    assert all(c.value is None for c in result)
