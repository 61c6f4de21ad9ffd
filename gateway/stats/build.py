"""Build a published statistics table: validate the request, aggregate in SQL, suppress.

``build_table(engine, measure=..., by=[...], period=...)`` is what ``gateway stats export``
calls before writing a format. The table has every interior cell and every marginal total (each
subset of ``by`` summed out, down to the grand total); cells are ordered interior first (sorted by
key, "ukjent" last in each part), then the totals by how many dimensions are summed out.

Per 1,000 inhabitants (``Table.per_1000``): when ``by`` has an area level (kommune, fylke or land),
the measure is a count or an amount (not the ratio ``kontakter-per-pasient``) and the population
table has rows for the period's year. The population of a cell is the sum over its area and, where
``by`` has them, its age group and sex (fagområde and praksistype do not split the population).
A suppressed cell, a cell of unknown area, age group or sex, or one without inhabitants has
``None``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal

from gateway.errors import StorageError
from gateway.stats.model import AREA_LEVELS, DIMENSIONS, MEASURES, TOTAL, Cell, Table
from gateway.stats.periods import Period, StatsError, parse_period
from gateway.stats.query import UNKNOWN, aggregate, measure_value
from gateway.stats.suppression import legend, suppress
from gateway.store.engine import Engine

__all__ = ["StatsError", "build_table", "validate_request"]

#: Measures that make sense per inhabitant (sums, not the ratio).
PER_INHABITANT_MEASURES = ("takster", "refusjon", "kontakter", "pasienter")


def validate_request(measure: str, by: Sequence[str]) -> tuple[str, ...]:
    """The dimensions as a tuple; ``StatsError`` listing the valid names when something is off."""
    if measure not in MEASURES:
        raise StatsError(f"unknown measure {measure!r}; valid measures: {', '.join(MEASURES)}")
    dims = tuple(by)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise StatsError(
            f"unknown dimension(s) {', '.join(map(repr, unknown))}; "
            f"valid dimensions: {', '.join(DIMENSIONS)}"
        )
    repeated = sorted({d for d in dims if dims.count(d) > 1})
    if repeated:
        raise StatsError(f"dimension(s) given more than once: {', '.join(repeated)}")
    areas = [d for d in dims if d in AREA_LEVELS]
    if len(areas) > 1:
        raise StatsError(
            f"at most one area level ({', '.join(AREA_LEVELS)}) per table, got {', '.join(areas)}"
        )
    return dims


def _part_order(part: str) -> tuple[int, str]:
    return (2 if part == TOTAL else 1 if part == UNKNOWN else 0, part)


def _cell_order(cell: Cell) -> tuple[int, tuple[tuple[int, str], ...]]:
    return (sum(1 for p in cell.key if p == TOTAL), tuple(_part_order(p) for p in cell.key))


def build_table(
    db: Engine,
    *,
    measure: str,
    by: Sequence[str],
    period: str,
    progress: Callable[[str], None] | None = None,
) -> Table:
    """The suppressed table of ``measure`` by the dimensions ``by`` for ``period``."""
    dims = validate_request(measure, by)
    parsed = parse_period(period)
    report = progress or (lambda _message: None)
    aggregates = aggregate(db, dims, parsed, with_takster=measure == "takster", progress=progress)
    population = _population(db, dims, parsed, measure)
    cells = sorted(
        (Cell(a.key, measure_value(measure, a), a.persons) for a in aggregates), key=_cell_order
    )
    report("prikker små celler")
    published = suppress(cells)
    per_1000 = None
    if population is not None:
        per_1000 = {c.key: _per_1000(c, dims, population) for c in published}
    report("ferdig")
    return Table(
        measure=measure,
        dimensions=dims,
        period=parsed.text,
        cells=published,
        legend=legend(published),
        per_1000=per_1000,
    )


#: Inhabitants by (area value, age group, sex), each part possibly TOTAL.
Population = dict[tuple[str, str, str], int]


def _population(
    db: Engine, dims: tuple[str, ...], period: Period, measure: str
) -> Population | None:
    area = next((d for d in dims if d in AREA_LEVELS), None)
    if area is None or measure not in PER_INHABITANT_MEASURES:
        return None
    try:
        rows = db.rows(
            "SELECT kommune, aldersgruppe, kjonn, count FROM stats_population WHERE year = ?",
            (period.year,),
        )
    except StorageError as exc:
        raise StatsError(f"cannot read the population table: {exc}") from exc
    if not rows:
        return None
    sums: Population = defaultdict(int)
    for kommune, group, sex, count in rows:
        place = {"kommune": kommune, "fylke": kommune[:2], "land": "Norge"}[area]
        for a in (place, TOTAL):
            for g in (group, TOTAL):
                for s in (sex, TOTAL):
                    sums[(a, g, s)] += int(count)
    return dict(sums)


_CENT = Decimal("0.01")


def _per_1000(cell: Cell, dims: tuple[str, ...], population: Population) -> Decimal | None:
    if cell.value is None:
        return None
    parts = dict(zip(dims, cell.key, strict=True))
    area = next(parts[d] for d in dims if d in AREA_LEVELS)
    lookup = (area, parts.get("aldersgruppe", TOTAL), parts.get("kjonn", TOTAL))
    if UNKNOWN in lookup:
        return None
    inhabitants = population.get(lookup, 0)
    if inhabitants <= 0:
        return None
    return (cell.value * 1000 / inhabitants).quantize(_CENT, ROUND_HALF_UP)
