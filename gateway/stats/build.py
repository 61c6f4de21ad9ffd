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
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from gateway.errors import StorageError
from gateway.stats.cube import EXCLUDED_PREFIX, Exclusion, aggregate_facts
from gateway.stats.exclusions import default_exclusion
from gateway.stats.mirror import load_facts, sync
from gateway.stats.model import AREA_LEVELS, DIMENSIONS, MEASURES, TOTAL, Cell, Table
from gateway.stats.paper import add_paper, counts_paper
from gateway.stats.periods import Period, StatsError, parse_period
from gateway.stats.query import UNKNOWN, check_store, ensure_indexes, measure_value
from gateway.stats.register import read_register
from gateway.stats.suppression import legend, suppress
from gateway.store.engine import Engine, Reader

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
    only: Mapping[str, Collection[str]] | None = None,
    share_of: str | None = None,
    exclusion: Exclusion | None = None,
    progress: Callable[[str], None] | None = None,
    mirror: Path | None = None,
) -> Table:
    """The suppressed table of ``measure`` by the dimensions ``by`` for ``period``.

    ``only`` keeps the bills whose value of a dimension is one of the given (``praksistype``
    ``fysioterapeut`` and ``driftsavtale`` ``ja``: the published physiotherapy tables);
    ``share_of`` adds percentage shares of the total over that dimension; ``exclusion`` is the
    90+ rule (default: the packaged list; ``Exclusion(frozenset())`` turns it off). ``mirror``
    is the statistics mirror's directory (``mirror.mirror_directory``); without one the bills
    are read afresh."""
    dims = validate_request(measure, by)
    _check_options(measure, dims, only or {}, share_of)
    if exclusion is None:
        exclusion = default_exclusion()
    parsed = parse_period(period)
    report = progress or (lambda _message: None)
    check_store(db)
    try:
        ensure_indexes(db)
        facts = load_facts(db) if mirror is None else sync(db, mirror, progress=progress)
        register = read_register(db, facts.senders)
    except StorageError as exc:
        raise StatsError(f"statistics query failed: {exc}") from exc
    report("summerer")
    aggregates = aggregate_facts(facts, register, dims, parsed, only=only, exclusion=exclusion)
    if counts_paper(measure, dims, bool(only)):
        aggregates = add_paper(db, aggregates, register, facts.senders.values, dims, parsed)
    population = _population(db, dims, parsed, measure, exclusion)
    cells = sorted(
        (Cell(a.key, measure_value(measure, a), a.persons) for a in aggregates), key=_cell_order
    )
    excluded = {i for i, c in enumerate(cells) if any(_is_excluded(p) for p in c.key)}
    report("prikker små celler")
    published = tuple(c for i, c in enumerate(suppress(cells, excluded)) if i not in excluded)
    per_1000 = None
    if population is not None:
        per_1000 = {c.key: _per_1000(c, dims, population) for c in published}
    report("ferdig")
    notes = (_EXCLUSION_NOTE.format(kommuner=", ".join(sorted(exclusion.kommuner))),)
    return Table(
        measure=measure,
        dimensions=dims,
        period=parsed.text,
        cells=published,
        legend=legend(published) + (notes if excluded else ()),
        per_1000=per_1000,
        share_of=share_of,
        shares=None if share_of is None else _shares(published, dims, share_of),
    )


_EXCLUSION_NOTE = (
    "Personer 90 år og eldre er holdt utenfor tallene for kommunene {kommuner}, "
    "men er med i summene for større områder."
)


def _is_excluded(part: str) -> bool:
    return part.startswith(EXCLUDED_PREFIX)


def _check_options(
    measure: str, dims: tuple[str, ...], only: Mapping[str, Collection[str]], share_of: str | None
) -> None:
    unknown = [d for d in only if d not in DIMENSIONS]
    if unknown:
        raise StatsError(f"unknown dimension(s) in --only: {', '.join(unknown)}")
    if share_of is not None:
        if share_of not in dims:
            raise StatsError(f"--share-of {share_of!r} must be one of the table's dimensions")
        if measure not in PER_INHABITANT_MEASURES:
            raise StatsError(f"shares need a count or an amount, not {measure!r}")


_TENTH = Decimal("0.1")


def _shares(
    cells: Sequence[Cell], dims: tuple[str, ...], share_of: str
) -> dict[tuple[str, ...], Decimal | None]:
    """Each cell as a percentage of its total over ``share_of`` (one decimal)."""
    at = dims.index(share_of)
    values = {c.key: c.value for c in cells}
    shares: dict[tuple[str, ...], Decimal | None] = {}
    for cell in cells:
        whole = values.get((*cell.key[:at], TOTAL, *cell.key[at + 1 :]))
        if cell.value is None or whole is None or whole == 0:
            shares[cell.key] = None
        else:
            shares[cell.key] = (cell.value * 100 / whole).quantize(_TENTH, ROUND_HALF_UP)
    return shares


#: Inhabitants by (area value, age group, sex), each part possibly TOTAL.
Population = dict[tuple[str, str, str], int]


def _population(
    db: Reader,
    dims: tuple[str, ...],
    period: Period,
    measure: str,
    exclusion: Exclusion,
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
        # Inhabitants the municipality's figures leave out count only in the larger areas.
        left_out = (
            area == "kommune" and kommune in exclusion.kommuner and group == exclusion.age_group
        )
        for a in (TOTAL,) if left_out else (place, TOTAL):
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
