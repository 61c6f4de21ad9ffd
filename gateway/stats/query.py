"""What the statistics count, and the entry to the numbers: ``aggregate``.

Which bills count: treatment time (``bills.dato_tid``) in the period ``[start, end)``, effectively
approved (``bill_status_effective.status = 'godkjent'``, so case workers' overrides and
rebehandling decide), not a credit (``kreditering = 0``) and not credited (``credited_by IS NULL``).

Measures per cell: ``kontakter`` = number of bills, ``refusjon`` = sum of the effective approved
amounts (``bill_status_effective.approved_ore``), ``takster`` = sum of ``antall`` over the bill's
``takst`` lines, ``pasienter`` = distinct ``patient_id``, ``kontakter-per-pasient`` = kontakter /
pasienter. Every cell also carries ``persons`` (distinct patients), which decides suppression.

Dimensions (a bill's key value, "ukjent" where unknown): ``praksistype``, ``fagomrade``,
``praksiskommune`` and ``driftsavtale`` from the practice register (``gateway.stats.register``);
``kontakttype`` (``gateway.stats.contact_types``); ``kommune`` / ``fylke`` / ``land`` from
``stats_residence`` (the operator's import; the fylke is the first two digits of the kommune, the
land "Norge" for every known residence); ``aldersgruppe``, the age on the treatment date from
``bills.patient_birth_date`` (a birthday on 29 February counts from 1 March in other years);
``kjonn`` from ``bills.patient_sex``.

How: the bills are read in SQL into numpy columns once (``gateway.stats.facts``; kept on disk
and brought up to date by ``gateway.stats.mirror``), and each table is computed from them in
``gateway.stats.cube``. ``aggregate`` reads a whole database into memory first (no mirror): for
small stores and tests.

Index this module adds to the claims database (``CREATE INDEX IF NOT EXISTS``):
``stats_bills_credited`` on ``bills(credited_by)``, with which a sync finds the originals new
credits consumed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gateway.errors import StorageError
from gateway.stats.periods import Period, StatsError
from gateway.store.engine import Engine

__all__ = ["UNKNOWN", "Aggregate", "aggregate", "ensure_indexes", "measure_value"]

#: The key value for a bill whose dimension value is not known.
UNKNOWN = "ukjent"

_REQUIRED_COLUMNS = ("patient_birth_date", "patient_sex", "practitioner_type")

_INDEXES = ("CREATE INDEX IF NOT EXISTS stats_bills_credited ON bills(credited_by)",)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One cell of the cube before suppression: its key (``TOTAL`` where summed out) and sums."""

    key: tuple[str, ...]
    kontakter: int
    ore: int
    takster: int
    persons: int


def ensure_indexes(db: Engine) -> None:
    """Create the indexes the statistics need (a one-time cost on a large store)."""
    db.create_tables(";\n".join(_INDEXES))


def _bill_columns(db: Engine) -> set[str]:
    if db.dialect == "sqlite":
        return {str(row[1]) for row in db.rows("PRAGMA table_info(bills)")}
    return {
        str(row[0])
        for row in db.rows(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'bills'"
        )
    }


def check_store(db: Engine) -> None:
    """``StatsError`` unless ``db`` is a claims store with the columns the statistics read."""
    try:
        columns = _bill_columns(db)
    except StorageError as exc:
        raise StatsError(f"cannot read the claims store: {exc}") from exc
    if not columns:
        raise StatsError("the database has no bills table: not a gateway claims store")
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise StatsError(
            f"the bills table lacks column(s) {', '.join(missing)}: start the gateway once "
            "with this version so that the store is migrated"
        )


def aggregate(
    db: Engine,
    dimensions: Sequence[str],
    period: Period,
    *,
    progress: Callable[[str], None] | None = None,
) -> list[Aggregate]:
    """Every interior cell and every marginal total (all subsets of ``dimensions`` summed out,
    down to the grand total) for the bills of ``period``, from the whole store read into
    memory. The grand total is there whenever a bill counts."""
    from gateway.stats.cube import aggregate_facts
    from gateway.stats.mirror import load_facts
    from gateway.stats.register import read_register

    del progress
    check_store(db)
    try:
        facts = load_facts(db)
        return aggregate_facts(facts, read_register(db, facts.senders), dimensions, period)
    except StorageError as exc:
        raise StatsError(f"statistics query failed: {exc}") from exc


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
