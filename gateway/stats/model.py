"""The published statistics table: what the query and the anonymisation produce and every output
format writes. Person counts stay inside: they decide suppression and are never exported.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

#: The measures ``gateway stats export --measure`` offers.
MEASURES = ("takster", "refusjon", "kontakter", "pasienter", "kontakter-per-pasient")

#: Grouping dimensions (``--by``); kommune, fylke and land are the area levels of the patient's
#: residence (use one); praksiskommune is where the practice is.
DIMENSIONS = (
    "fagomrade",
    "praksistype",
    "praksiskommune",
    "driftsavtale",
    "kontakttype",
    "kommune",
    "fylke",
    "land",
    "aldersgruppe",
    "kjonn",
)
AREA_LEVELS = ("kommune", "fylke", "land")

#: The key value of a total over a dimension ("all values"), in totals cells.
TOTAL = "*"

#: Groups with fewer distinct persons than this are not published.
MIN_PERSONS = 5


class Suppression(enum.Enum):
    """Why a cell's value is not published."""

    PRIMARY = "primary"  # fewer than MIN_PERSONS distinct persons
    COMPLEMENTARY = "complementary"  # so that a primary cell cannot be recomputed from totals


@dataclass(frozen=True, slots=True)
class Cell:
    """One value of the table. ``key`` holds one value per dimension of the table, or ``TOTAL``.

    ``value`` is ``None`` when suppressed. ``persons`` (distinct patients behind the cell) is
    internal: formats must not write it.
    """

    key: tuple[str, ...]
    value: Decimal | None
    persons: int
    suppressed: Suppression | None = None

    @property
    def is_total(self) -> bool:
        return TOTAL in self.key


@dataclass(frozen=True, slots=True)
class Table:
    """A published table: the interior cells and the published totals, plus a legend.

    ``per_1000`` is set when the measure is also given per 1,000 inhabitants (from the
    imported population table): it maps a cell key to that figure. ``shares`` likewise, when the
    table gives percentage shares (``share_of``).
    """

    measure: str
    dimensions: tuple[str, ...]
    period: str  # as given: "2023", "2023-T1", "2023-05"
    cells: tuple[Cell, ...]
    legend: tuple[str, ...]  # Norwegian lines explaining suppression (no values)
    per_1000: dict[tuple[str, ...], Decimal | None] | None = None
    #: Percentage shares: each cell's value as a percentage of the total over ``share_of`` (the
    #: cell with that dimension summed out); None where the cell or that total is suppressed.
    share_of: str | None = None
    shares: dict[tuple[str, ...], Decimal | None] | None = None

    @property
    def interior(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if not c.is_total)

    @property
    def totals(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.is_total)
