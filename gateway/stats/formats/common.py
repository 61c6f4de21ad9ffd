"""What every format shares: the signs, the reasons' wording, numbers, and the row model of
csv and xlsx (a header row and one row of text and ``Decimal`` fields per cell).

- A suppressed (prikket) value is ``:`` (SSB's sign) in csv and xlsx, and absent (``null`` /
  no attribute) in json and xml; the reason is always written: ``primary`` (fewer than 5
  persons) or ``complementary`` (hidden so that a primary cell cannot be recomputed from totals).
  In csv/xlsx the ``prikking`` column says it in Norwegian (see ``REASON_TEXT``): ``primær``
  or ``sekundær`` (SSB's words for the two) followed by the reason.
- A total over a dimension has ``*`` as its key value in json and xml
  (``gateway.stats.model.TOTAL``) and ``I alt`` in csv and xlsx, which people read.
- Per-1,000-inhabitant figures (``table.per_1000``) are an extra column / field. A per-1,000
  figure that is not published is ``:`` when its cell is suppressed, else ``..`` (SSB: "data
  not available", e.g. no population figure).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation

from gateway.stats.model import MEASURES, TOTAL, Cell, Suppression, Table

FORMATS = ("csv", "json", "xml", "xlsx", "png")
READABLE_FORMATS = ("csv", "json", "xml", "xlsx")
FORMAT_ID = "gateway-stats/1"

SUPPRESSED_MARK = ":"  # SSB: "Vises ikke av konfidensialitetshensyn"
MISSING_MARK = ".."  # SSB: "Tall kan ikke forekomme / oppgave mangler"
TOTAL_LABEL = "I alt"
PERIOD_COLUMN = "periode"
REASON_COLUMN = "prikking"
PER_1000_SUFFIX = " per 1000 innbyggere"
SHARE_INFIX = " andel (%) av sum over "
LEGEND_PREFIX = "# "

#: How csv and xlsx name the reason for a suppression.
REASON_TEXT = {
    Suppression.PRIMARY: "primær: færre enn 5 personer",
    Suppression.COMPLEMENTARY: "sekundær: skjult så en prikket celle ikke kan regnes ut",
}
_REASON_BY_TEXT = {text: reason for reason, text in REASON_TEXT.items()}

#: Explanation of the signs, written on the xlsx legend sheet before the table's own legend.
SIGNS = (
    f"{SUPPRESSED_MARK}  Prikket: vises ikke av personvernhensyn.",
    f"{MISSING_MARK}  Tall mangler (f.eks. ingen befolkningstall).",
    f"{TOTAL_LABEL}  Sum over alle verdier av dimensjonen (prikkede celler er med i summen).",
)


class FormatError(ValueError):
    """A file cannot be read back as a statistics table, or a format is unknown."""


def plain(value: Decimal) -> str:
    """A decimal without exponent: ``1E+3`` -> ``1000``."""
    return format(value, "f")


def parse_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ".").replace("\u00a0", "").replace(" ", ""))
    except InvalidOperation as exc:
        raise FormatError(f"not a number: {text!r}") from exc
    if not value.is_finite():
        raise FormatError(f"not a number: {text!r}")
    return value


def per_1000_of(table: Table, cell: Cell) -> tuple[bool, Decimal | None]:
    """(present, figure) of a cell's per-1,000 figure."""
    if table.per_1000 is None or cell.key not in table.per_1000:
        return False, None
    return True, table.per_1000[cell.key]


def share_of(table: Table, cell: Cell) -> tuple[bool, Decimal | None]:
    """(present, figure) of a cell's percentage share."""
    if table.shares is None or cell.key not in table.shares:
        return False, None
    return True, table.shares[cell.key]


def unpublished_mark(cell_suppressed: bool) -> str:
    return SUPPRESSED_MARK if cell_suppressed else MISSING_MARK


def header_row(table: Table) -> list[str]:
    header = [PERIOD_COLUMN, *table.dimensions, table.measure]
    if table.per_1000 is not None:
        header.append(table.measure + PER_1000_SUFFIX)
    if table.shares is not None:
        header.append(f"{table.measure}{SHARE_INFIX}{table.share_of}")
    header.append(REASON_COLUMN)
    return header


def data_rows(table: Table) -> Iterable[list[str | Decimal]]:
    """The data rows of csv and xlsx: key labels as text, numbers as Decimal, marks as text."""
    for cell in table.cells:
        row: list[str | Decimal] = [table.period]
        row.extend(TOTAL_LABEL if part == TOTAL else part for part in cell.key)
        row.append(SUPPRESSED_MARK if cell.value is None else cell.value)
        if table.per_1000 is not None:
            present, figure = per_1000_of(table, cell)
            if not present:
                row.append("")
            elif figure is None:
                row.append(unpublished_mark(cell.value is None))
            else:
                row.append(figure)
        if table.shares is not None:
            present, figure = share_of(table, cell)
            if not present:
                row.append("")
            elif figure is None:
                row.append(unpublished_mark(cell.value is None))
            else:
                row.append(figure)
        row.append("" if cell.suppressed is None else REASON_TEXT[cell.suppressed])
        yield row


def table_from_rows(
    header: Sequence[str], rows: Iterable[Sequence[str | Decimal]], legend: Sequence[str]
) -> Table:
    """Inverse of ``header_row``/``data_rows``."""
    header = [h.strip() for h in header]
    if len(header) < 3 or header[0] != PERIOD_COLUMN or header[-1] != REASON_COLUMN:
        raise FormatError(f"not a statistics table header: {header!r}")
    measure_at = next((i for i, h in enumerate(header) if h in MEASURES), None)
    if measure_at is None:
        raise FormatError(f"no measure column in header {header!r}")
    measure = header[measure_at]
    dimensions = tuple(header[1:measure_at])
    extras = header[measure_at + 1 : -1]
    has_per_1000 = bool(extras) and extras[0] == measure + PER_1000_SUFFIX
    rest = extras[1:] if has_per_1000 else extras
    shares_of = None
    if rest and rest[0].startswith(measure + SHARE_INFIX):
        shares_of = rest[0][len(measure + SHARE_INFIX) :]
        rest = rest[1:]
    if rest:
        raise FormatError(f"unexpected columns in header {header!r}")
    share_at = measure_at + 1 + has_per_1000
    width = len(header)
    period = ""
    cells: list[Cell] = []
    per_1000: dict[tuple[str, ...], Decimal | None] = {}
    shares: dict[tuple[str, ...], Decimal | None] = {}
    for number, row in enumerate(rows, start=2):
        if len(row) != width:
            raise FormatError(f"row {number}: {len(row)} fields, expected {width}")
        period = str(row[0])
        key = tuple(TOTAL if str(part) == TOTAL_LABEL else str(part) for part in row[1:measure_at])
        value = number_or_none(row[measure_at])
        reason_text = str(row[-1])
        reason = None
        if reason_text:
            if reason_text not in _REASON_BY_TEXT:
                raise FormatError(f"row {number}: unknown {REASON_COLUMN} {reason_text!r}")
            reason = _REASON_BY_TEXT[reason_text]
        cells.append(Cell(key=key, value=value, persons=0, suppressed=reason))
        if has_per_1000 and row[measure_at + 1] != "":
            per_1000[key] = number_or_none(row[measure_at + 1])
        if shares_of is not None and row[share_at] != "":
            shares[key] = number_or_none(row[share_at])
    return Table(
        measure=measure,
        dimensions=dimensions,
        period=period,
        cells=tuple(cells),
        legend=tuple(legend),
        per_1000=per_1000 if has_per_1000 else None,
        share_of=shares_of,
        shares=shares if shares_of is not None else None,
    )


def number_or_none(field: str | Decimal) -> Decimal | None:
    if isinstance(field, Decimal):
        return field
    if field in (SUPPRESSED_MARK, MISSING_MARK):
        return None
    return parse_decimal(field)
