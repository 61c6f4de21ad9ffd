"""The municipalities whose oldest inhabitants are left out at municipality level.

The published statistics leave persons aged 90 and over out of the figures of a few very small
municipalities (the list in ``kodeverk/unntatt-90.csv``: Bykle, Kvitsøy, Utsira, Modalen,
Røyrvik, Vevelstad, Træna and Røst) and count them only in the totals of larger areas (fylke,
land, the total over all municipalities). The list is data: ``load_exclusion`` reads the
packaged file or another with the same header (``kommune,navn``), e.g. from ``gateway stats
export --exclusion-file``.

The rule applies on top of the under-5 suppression: the excluded persons' figures become hidden
cells of their own (``gateway.stats.cube``), which the complementary suppression protects like
any suppressed cell, so they cannot be recomputed from the totals either.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from gateway.stats.cube import Exclusion
from gateway.stats.periods import StatsError

__all__ = ["default_exclusion", "load_exclusion"]


def _parse(text: str, where: str) -> Exclusion:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or "kommune" not in reader.fieldnames:
        raise StatsError(f"{where}: line 1: header must name the column kommune")
    kommuner: set[str] = set()
    for line, row in enumerate(reader, start=2):
        kommune = (row.get("kommune") or "").strip()
        if len(kommune) != 4 or not kommune.isascii() or not kommune.isdigit():
            raise StatsError(f"{where}: line {line}: {kommune!r} is not a four-digit kommune")
        kommuner.add(kommune)
    return Exclusion(frozenset(kommuner))


def default_exclusion() -> Exclusion:
    """The packaged list."""
    raw = resources.files("gateway.stats").joinpath("kodeverk/unntatt-90.csv").read_text("utf-8")
    return _parse(raw, "kodeverk/unntatt-90.csv")


def load_exclusion(path: Path) -> Exclusion:
    """The list in ``path`` (CSV with a ``kommune`` column)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise StatsError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    return _parse(text, str(path))
