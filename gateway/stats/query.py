"""The statistics query: aggregation of the stored bills in SQL, never bill by bill in Python.

Which bills count: treatment time (``bills.dato_tid``) in the period ``[start, end)``, effectively
approved (``bill_status_effective.status = 'godkjent'``, so case workers' overrides and
rebehandling decide), not a credit (``kreditering = 0``) and not credited (``credited_by IS NULL``).

Measures per cell: ``kontakter`` = number of bills, ``refusjon`` = sum of the effective approved
amounts (``bill_status_effective.approved_ore``), ``takster`` = sum of ``antall`` over the bill's
``takst`` lines, ``pasienter`` = distinct ``patient_id``, ``kontakter-per-pasient`` = kontakter /
pasienter. Every cell also carries ``persons`` (distinct patients), which decides suppression.

Dimensions (a bill's key value, "ukjent" where unknown):

- ``fagomrade`` and ``praksistype``: both ``bills.practitioner_type`` (tannlege, lege, psykolog,
  lab, ...) for now - the store knows no finer speciality yet; both names are kept so that the
  command line and the published files already have the dimensions KUHR publishes.
- ``kommune`` / ``fylke`` / ``land``: from ``stats_residence`` (the operator's import); the fylke
  is the first two digits of the kommune, the land is "Norge" for every known residence.
- ``aldersgruppe``: the age on the treatment date, from ``bills.patient_birth_date``, in SQL
  (a birthday on 29 February counts from 1 March in other years, as in ``gateway.claims.persons``).
- ``kjonn``: ``bills.patient_sex`` ('K'/'M').

How: one pass over the bills groups them per patient and non-area key; the residence is joined
to those groups (one lookup per group, not per bill) and the result, one row per (cell, patient),
goes to a temporary table. Then one ``GROUP BY`` per grouping set (every subset of the
dimensions: SQLite has no CUBE) gives the interior cells, every marginal total and the grand
total, each with its own ``COUNT(DISTINCT patient)`` - the persons of a total are not the sum of
its cells' persons. The SQL runs on either engine (one session, for the temporary table); on
SQLite the connection uses in-memory temporary B-trees and a large page cache.

Indexes this module adds to the claims database (``CREATE INDEX IF NOT EXISTS``):
``stats_bills_period`` on ``bills(dato_tid)``, used for periods holding at most 15 % of the bills
(counted on the index first; a larger share is read faster by a full table scan). The store's
``bill_lines_bill`` and ``overrides_bill`` serve the per-bill takst sum and the effective status,
and the primary key of ``stats_residence`` the residence lookup.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gateway.errors import StorageError
from gateway.stats.model import TOTAL
from gateway.stats.periods import Period, StatsError
from gateway.stats.reference import AGE_GROUP_BOUNDS, ensure_tables
from gateway.store.engine import Engine, Transaction

__all__ = ["UNKNOWN", "Aggregate", "aggregate", "ensure_indexes", "measure_value"]

#: The key value for a bill whose dimension value is not known.
UNKNOWN = "ukjent"

_REQUIRED_COLUMNS = ("patient_birth_date", "patient_sex", "practitioner_type")

_INDEXES = ("CREATE INDEX IF NOT EXISTS stats_bills_period ON bills(dato_tid)",)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One cell of the cube before suppression: its key (``TOTAL`` where summed out) and sums."""

    key: tuple[str, ...]
    kontakter: int
    ore: int
    takster: int
    persons: int


def _age_group_sql() -> str:
    parts = [f"WHEN age IS NULL OR age < 0 THEN '{UNKNOWN}'"]
    parts += [
        f"WHEN age <= {high} THEN '{label}'"
        for label, _low, high in AGE_GROUP_BOUNDS
        if high is not None
    ]
    return "CASE " + " ".join(parts) + f" ELSE '{AGE_GROUP_BOUNDS[-1][0]}' END"


_AREA_DIMENSIONS = ("kommune", "fylke", "land")

#: SQL for each dimension: area levels over ``kommune`` (the residence, joined after the bills
#: are grouped per patient), the others over the columns of the bill query (see ``_BASE``).
_DIMENSION_SQL: dict[str, str] = {
    "fagomrade": f"COALESCE(ptype, '{UNKNOWN}')",
    "praksistype": f"COALESCE(ptype, '{UNKNOWN}')",
    "kommune": f"COALESCE(r.kommune, '{UNKNOWN}')",
    "fylke": f"COALESCE(substr(r.kommune, 1, 2), '{UNKNOWN}')",
    "land": f"CASE WHEN r.kommune IS NULL THEN '{UNKNOWN}' ELSE 'Norge' END",
    "aldersgruppe": _age_group_sql(),
    "kjonn": f"CASE sex WHEN 'K' THEN 'K' WHEN 'M' THEN 'M' ELSE '{UNKNOWN}' END",
}

# Age in whole years on the treatment date: year difference, minus one before the birthday.
_AGE_SQL = (
    "CAST(substr(b.dato_tid, 1, 4) AS INTEGER) - CAST(substr(b.patient_birth_date, 1, 4) "
    "AS INTEGER) - CASE WHEN substr(b.dato_tid, 6, 5) < substr(b.patient_birth_date, 6, 5) "
    "THEN 1 ELSE 0 END"
)

_TAKSTER_SQL = (
    "(SELECT COALESCE(SUM(l.antall), 0) FROM bill_lines l "
    "WHERE l.bill_id = b.id AND l.kind = 'takst')"
)

_BASE = """
SELECT b.patient_id AS pid, b.practitioner_type AS ptype, b.patient_sex AS sex,
       {age} AS age, e.approved_ore AS ore, {takster} AS takster
FROM bills b
JOIN bill_status_effective e ON e.bill_id = b.id
WHERE {plus}b.dato_tid >= '{start}' AND {plus}b.dato_tid < '{end}'
  AND b.kreditering = 0 AND b.credited_by IS NULL AND e.status = 'godkjent'
"""


#: Above this share of all bills in the period a full table scan beats the index on dato_tid
#: (every bill found through the index costs a random table lookup).
_SCAN_SHARE = 0.15

#: Per-connection settings for one large aggregation: temporary B-trees in memory and a larger
#: page cache and memory map (read side only; the claims store's own connection is unaffected).
_PRAGMAS = (
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -262144",  # 256 MiB
    "PRAGMA mmap_size = 1073741824",  # 1 GiB
)


def _use_index(db: Transaction, period: Period) -> bool:
    """Whether the period is selective enough for the dato_tid index (counted on the index)."""
    (in_period,) = db.rows(
        "SELECT COUNT(*) FROM bills WHERE dato_tid >= ? AND dato_tid < ?",
        (period.start.isoformat(), period.end.isoformat()),
    )[0]
    (everything,) = db.rows("SELECT COUNT(*) FROM bills")[0]
    return bool(everything) and in_period <= _SCAN_SHARE * everything


def ensure_indexes(db: Engine) -> None:
    """Create the indexes the statistics queries need (a one-time cost on a large store)."""
    db.create_tables("; ".join(_INDEXES))


def _has(db: Engine, columns: str) -> bool:
    try:
        db.rows(f"SELECT {columns} FROM bills WHERE 1 = 0")  # noqa: S608 - fixed names
    except StorageError:
        return False
    return True


def _check_columns(db: Engine) -> None:
    if not _has(db, "id"):
        raise StatsError("the database has no bills table: not a gateway claims store")
    missing = [c for c in _REQUIRED_COLUMNS if not _has(db, c)]
    if missing:
        raise StatsError(
            f"the bills table lacks column(s) {', '.join(missing)}: start the gateway once "
            "with this version so that the store is migrated"
        )


def aggregate(
    engine: Engine,
    dimensions: Sequence[str],
    period: Period,
    *,
    with_takster: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[Aggregate]:
    """Every interior cell and every marginal total (all subsets of ``dimensions`` summed out,
    down to the grand total) for the bills of ``period``. The grand total is always there."""
    report = progress or (lambda _message: None)
    unknown = [d for d in dimensions if d not in _DIMENSION_SQL]
    if unknown:
        raise StatsError(f"unknown dimension(s) {', '.join(unknown)}")
    _check_columns(engine)
    try:
        ensure_indexes(engine)
        ensure_tables(engine)
        with engine.session("statistics query failed") as db:
            sqlite = engine.dialect == "sqlite"
            return _aggregate(db, sqlite, dimensions, period, with_takster, report)
    except StorageError as exc:
        raise StatsError(str(exc)) from exc


def _aggregate(
    db: Transaction,
    sqlite: bool,
    dimensions: Sequence[str],
    period: Period,
    with_takster: bool,
    report: Callable[[str], None],
) -> list[Aggregate]:
    if sqlite:
        for pragma in _PRAGMAS:
            db.execute(pragma)
    base = _BASE.format(
        age=_AGE_SQL,
        takster=_TAKSTER_SQL if with_takster else "0",
        # SQLite: a unary plus keeps the planner off the index for a large share.
        plus="" if not sqlite or _use_index(db, period) else "+",
        start=period.start.isoformat(),  # dates of our own making: safe as literals
        end=period.end.isoformat(),
    )
    # Stage 1 groups the bills per patient and non-area key; stage 2 adds the residence
    # (one lookup per group, in patient order, rather than one per bill).
    inner = [
        f"{_DIMENSION_SQL[d]} AS d{i}"
        for i, d in enumerate(dimensions)
        if d not in _AREA_DIMENSIONS
    ]
    outer = [
        f"{_DIMENSION_SQL[d]} AS d{i}" if d in _AREA_DIMENSIONS else f"g.d{i} AS d{i}"
        for i, d in enumerate(dimensions)
    ]
    inner_keys = [f"d{i}" for i, d in enumerate(dimensions) if d not in _AREA_DIMENSIONS]
    needs_residence = any(d in _AREA_DIMENSIONS for d in dimensions)
    report("samler regningene for perioden")
    db.execute("DROP TABLE IF EXISTS stats_base")
    db.execute(
        "CREATE TEMP TABLE stats_base AS SELECT "  # noqa: S608 - fixed SQL fragments only
        + ", ".join([*outer, "g.pid AS pid", "g.kontakter", "g.ore", "g.takster"])
        + " FROM (SELECT "
        + ", ".join(
            [
                *inner,
                "pid",
                "COUNT(*) AS kontakter",
                "SUM(ore) AS ore",
                "SUM(takster) AS takster",
            ]
        )
        + " FROM ("
        + base
        + ") AS in_period GROUP BY "
        + ", ".join(["pid", *inner_keys])
        + ") g"
        + (" LEFT JOIN stats_residence r ON r.patient_id = g.pid" if needs_residence else ""),
    )
    cells: list[Aggregate] = []
    n = len(dimensions)
    subsets = [
        kept
        for size in range(len(dimensions), -1, -1)
        for kept in itertools.combinations(range(len(dimensions)), size)
    ]
    for number, kept in enumerate(subsets, start=1):
        report(f"summerer grupperingssett {number} av {len(subsets)}")
        select = [f"d{i}" if i in kept else "NULL" for i in range(len(dimensions))]
        sql = (
            "SELECT "  # noqa: S608 - fixed SQL fragments only
            + ", ".join(
                [
                    *select,
                    "COALESCE(SUM(kontakter), 0)",
                    "COALESCE(SUM(ore), 0)",
                    "COALESCE(SUM(takster), 0)",
                    # one row per (cell, patient): the interior needs no DISTINCT
                    "COUNT(*)" if len(kept) == n else "COUNT(DISTINCT pid)",
                ]
            )
            + " FROM stats_base"
            + (" GROUP BY " + ", ".join(f"d{i}" for i in kept) if kept else "")
        )
        for row in db.rows(sql):
            key = tuple(TOTAL if i not in kept else str(row[i]) for i in range(n))
            cells.append(
                Aggregate(key, int(row[n]), int(row[n + 1]), int(row[n + 2]), int(row[n + 3]))
            )
    db.execute("DROP TABLE IF EXISTS stats_base")
    return cells


_CENT = Decimal("0.01")


def measure_value(measure: str, cell: Aggregate) -> Decimal:
    """The published value of ``measure`` for a cell (refusjon in kroner with øre; the ratio
    rounded half up to two decimals; 0 for a ratio without patients)."""
    if measure == "takster":
        return Decimal(cell.takster)
    if measure == "refusjon":
        return (Decimal(cell.ore) / 100).quantize(_CENT)
    if measure == "kontakter":
        return Decimal(cell.kontakter)
    if measure == "pasienter":
        return Decimal(cell.persons)
    if measure == "kontakter-per-pasient":
        if cell.persons == 0:
            return Decimal("0.00")
        return (Decimal(cell.kontakter) / Decimal(cell.persons)).quantize(_CENT, ROUND_HALF_UP)
    raise StatsError(f"unknown measure {measure!r}")
