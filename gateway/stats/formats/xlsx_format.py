"""The xlsx format of a statistics table.

Sheet ``Tabell``: the csv columns with a bold header row, numbers as numbers, ``:`` for a
suppressed value; sheet ``Tegnforklaring``: the legend and what ``:`` and ``..`` mean.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.stats.formats.common import (
    MISSING_MARK,
    SIGNS,
    SUPPRESSED_MARK,
    FormatError,
    data_rows,
    header_row,
    table_from_rows,
)
from gateway.stats.model import Table

TABLE_SHEET = "Tabell"
LEGEND_SHEET = "Tegnforklaring"


def _xlsx_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def write_xlsx(table: Table, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = TABLE_SHEET
    header = header_row(table)
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    right = Alignment(horizontal="right")
    for row in data_rows(table):
        sheet.append([_xlsx_number(f) if isinstance(f, Decimal) else f for f in row])
        for cell in sheet[sheet.max_row]:
            if cell.value in (SUPPRESSED_MARK, MISSING_MARK):
                cell.alignment = right
    sheet.freeze_panes = "A2"
    for index, title in enumerate(header, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = max(10, min(60, len(title) + 4))
    legend = book.create_sheet(LEGEND_SHEET)
    legend.append(["Tegnforklaring"])
    legend["A1"].font = Font(bold=True)
    for line in SIGNS:
        legend.append([line])
    legend.append([])
    legend.append(["Om tabellen"])
    legend.cell(row=legend.max_row, column=1).font = Font(bold=True)
    for line in table.legend:
        legend.append([line])
    legend.column_dimensions["A"].width = 100
    book.save(path)


def read_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        if TABLE_SHEET not in book.sheetnames:
            raise FormatError(f"no sheet {TABLE_SHEET!r}")
        rows = [list(r) for r in book[TABLE_SHEET].iter_rows(values_only=True)]
        legend_rows = (
            [r[0] for r in book[LEGEND_SHEET].iter_rows(values_only=True) if r]
            if LEGEND_SHEET in book.sheetnames
            else []
        )
    finally:
        book.close()
    if not rows:
        raise FormatError("empty sheet")

    def field(value: object) -> str | Decimal:
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, float):
            return Decimal(repr(value))
        return str(value)

    header = [str(h) for h in rows[0]]
    data = [[field(v) for v in row] for row in rows[1:] if any(v is not None for v in row)]
    # The legend sheet: a title, SIGNS, an empty row, "Om tabellen", then the table's legend.
    lines = [str(v) if v is not None else "" for v in legend_rows]
    start = lines.index("Om tabellen") + 1 if "Om tabellen" in lines else len(lines)
    return table_from_rows(header, data, lines[start:])
