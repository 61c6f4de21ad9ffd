"""A PNG bar chart of a statistics table (matplotlib, Agg backend: no display needed).

What is drawn: the measure by the table's first dimension for the table's period. When the table
publishes totals over every other dimension (key ``(value, *, *, ...)``), those are the bars: one
per value of the first dimension. Otherwise the interior cells are the bars, labelled with their
whole key. A suppressed (prikket) value is drawn as a hatched empty outline of a fixed, small
height (it reveals nothing) labelled ``:``. Labels are Norwegian. Persons are never drawn.
"""

from __future__ import annotations

from pathlib import Path

from gateway.stats.model import TOTAL, Cell, Table

MEASURE_LABELS = {
    "takster": "Antall takster",
    "refusjon": "Refusjon (kr)",
    "kontakter": "Antall kontakter",
    "pasienter": "Antall pasienter",
    "kontakter-per-pasient": "Kontakter per pasient",
}
DIMENSION_LABELS = {
    "fagomrade": "Fagområde",
    "praksistype": "Praksistype",
    "kommune": "Kommune",
    "fylke": "Fylke",
    "land": "Land",
    "aldersgruppe": "Aldersgruppe",
    "kjonn": "Kjønn",
}
SUPPRESSED_LEGEND = "Prikket (:): vises ikke av personvernhensyn"
#: Bars beyond this many are not drawn (the chart would be unreadable); the title says so.
MAX_BARS = 60


def chart_cells(table: Table) -> list[tuple[str, Cell]]:
    """The (label, cell) bars the chart draws, in table order."""
    if not table.dimensions:
        return [("I alt", c) for c in table.cells]
    by_first = [c for c in table.cells if c.key[0] != TOTAL and all(p == TOTAL for p in c.key[1:])]
    if by_first:
        return [(c.key[0], c) for c in by_first]
    return [(" / ".join(c.key), c) for c in table.interior]


def _norwegian(value: float, _position: object = None) -> str:
    """Thousands grouped with a space, decimal comma: 12 345,5."""
    text = f"{value:,.1f}" if value != int(value) else f"{int(value):,}"
    return text.replace(",", " ").replace(".", ",")


def write_chart(table: Table, path: Path, *, image_format: str = "png") -> None:
    """Draw ``table`` as a bar chart into the PNG file ``path`` (``image_format="svg"``: an SVG,
    which tests read as text)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    bars = chart_cells(table)
    truncated = len(bars) > MAX_BARS
    bars = bars[:MAX_BARS]
    labels = [label.replace("_", " ") for label, _ in bars]
    values = [float(c.value) if c.value is not None else 0.0 for _, c in bars]
    published = [v for (_, c), v in zip(bars, values, strict=True) if c.value is not None]
    top = max(published, default=1.0) or 1.0
    placeholder = top * 0.06

    width = min(24.0, max(6.4, 0.45 * len(bars) + 2.0))
    figure, axes = plt.subplots(figsize=(width, 4.8), dpi=100)
    try:
        positions = list(range(len(bars)))
        for x, (_, cell), value in zip(positions, bars, values, strict=True):
            if cell.value is None:
                axes.bar(
                    x, placeholder, color="none", edgecolor="#555555", hatch="///", linewidth=1.0
                )
                axes.text(x, placeholder, ":", ha="center", va="bottom", fontsize=12)
            else:
                axes.bar(x, value, color="#2a6f97")
        axes.set_xticks(positions)
        if len(bars) > 10:
            axes.set_xticklabels(labels, rotation=90)
        elif len(bars) > 3 and max(map(len, labels), default=0) > 6:
            axes.set_xticklabels(labels, rotation=35, ha="right", rotation_mode="anchor")
        else:
            axes.set_xticklabels(labels)
        axes.yaxis.set_major_formatter(FuncFormatter(_norwegian))
        axes.set_ylim(0, max(top, placeholder) * 1.12)
        measure = MEASURE_LABELS.get(table.measure, table.measure)
        axes.set_ylabel(measure)
        first = table.dimensions[0] if table.dimensions else ""
        axes.set_xlabel(DIMENSION_LABELS.get(first, first))
        title = f"{measure} etter {DIMENSION_LABELS.get(first, first).lower()}, {table.period}"
        if truncated:
            title += f" (de første {MAX_BARS})"
        axes.set_title(title)
        if any(c.value is None for _, c in bars):
            axes.legend(
                handles=[
                    Patch(
                        facecolor="none", edgecolor="#555555", hatch="///", label=SUPPRESSED_LEGEND
                    )
                ],
                loc="upper right",
                fontsize=8,
            )
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        figure.savefig(path, format=image_format)
    finally:
        plt.close(figure)
