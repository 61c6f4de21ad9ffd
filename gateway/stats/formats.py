"""Writing (and, for tests and consumers, reading back) a published statistics table.

``write_table(table, path, fmt)`` writes one of ``FORMATS``; ``read_table(path, fmt)`` parses
csv, json, xml and xlsx back into a :class:`~gateway.stats.model.Table`. Person counts are never
written: a table read back has ``persons == 0`` in every cell.

Conventions shared by every format
----------------------------------
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

CSV
---
UTF-8 with a byte order mark, ``;`` separated, decimal comma: what Excel with Norwegian settings
opens correctly with a double click (and ``pandas.read_csv(sep=";", decimal=",")`` reads).
Columns: ``periode``, one column per dimension, the measure (e.g. ``refusjon``), optionally
``<measure> per 1000 innbyggere``, and ``prikking`` (empty, or the reason). After the data comes
one empty line and then the legend, one line each, starting with ``# ``: a machine reads rows
until the first empty line.

JSON
----
One object (UTF-8, ``format`` ``"gateway-stats/1"``)::

    {"format": "gateway-stats/1", "measure": "takster", "period": "2023",
     "dimensions": ["kommune", "kjonn"], "total": "*", "per_1000": false,
     "cells": [{"key": {"kommune": "0301", "kjonn": "K"}, "value": 1234,
                "suppressed": null},
               {"key": {"kommune": "0301", "kjonn": "M"}, "value": null,
                "suppressed": "primary"}, ...],
     "legend": ["..."]}

``value`` is a JSON number (read it with ``parse_float=Decimal`` to keep it exact), or a string
if a number would lose precision. With ``per_1000: true`` a cell may have ``"per_1000"`` (a
number, or ``null`` when not published).

XML
---
UTF-8, no namespace::

    <statistikk format="gateway-stats/1" measure="takster" period="2023">
      <dimensions><dimension>kommune</dimension>...</dimensions>
      <cells>
        <cell value="1234"><key dimension="kommune">0301</key>...</cell>
        <cell suppressed="primary"><key dimension="kommune">0301</key>...</cell>
      </cells>
      <legend><line>...</line></legend>
    </statistikk>

``value`` is a plain decimal (point); ``per_1000="..."`` as in csv (``:``/``..`` if not
published) when the table has per-1,000 figures.

XLSX
----
Sheet ``Tabell``: the csv columns with a bold header row, numbers as numbers, ``:`` for a
suppressed value; sheet ``Tegnforklaring``: the legend and what ``:`` and ``..`` mean.

PNG
---
A bar chart, see :mod:`gateway.stats.chart`.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

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


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------


def write_table(table: Table, path: Path, fmt: str) -> None:
    """Write ``table`` to ``path`` as ``fmt`` (one of ``FORMATS``). Never writes persons."""
    if fmt == "csv":
        path.write_bytes(to_csv(table).encode("utf-8-sig"))
    elif fmt == "json":
        path.write_text(to_json(table), encoding="utf-8")
    elif fmt == "xml":
        path.write_bytes(to_xml(table))
    elif fmt == "xlsx":
        _write_xlsx(table, path)
    elif fmt == "png":
        from gateway.stats.chart import write_chart

        write_chart(table, path)
    else:
        raise FormatError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def read_table(path: Path, fmt: str) -> Table:
    """Parse a file written by :func:`write_table` (csv, json, xml, xlsx); persons are 0."""
    if fmt == "csv":
        return from_csv(path.read_bytes().decode("utf-8-sig"))
    if fmt == "json":
        return from_json(path.read_text(encoding="utf-8"))
    if fmt == "xml":
        return from_xml(path.read_bytes())
    if fmt == "xlsx":
        return _read_xlsx(path)
    raise FormatError(f"cannot read format {fmt!r} (one of {', '.join(READABLE_FORMATS)})")


# --------------------------------------------------------------------------------------------
# shared: numbers and the row model of csv and xlsx
# --------------------------------------------------------------------------------------------


def _plain(value: Decimal) -> str:
    """A decimal without exponent: ``1E+3`` -> ``1000``."""
    return format(value, "f")


def _parse_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", ".").replace("\u00a0", "").replace(" ", ""))
    except InvalidOperation as exc:
        raise FormatError(f"not a number: {text!r}") from exc
    if not value.is_finite():
        raise FormatError(f"not a number: {text!r}")
    return value


def _per_1000_of(table: Table, cell: Cell) -> tuple[bool, Decimal | None]:
    """(present, figure) of a cell's per-1,000 figure."""
    if table.per_1000 is None or cell.key not in table.per_1000:
        return False, None
    return True, table.per_1000[cell.key]


def _unpublished_mark(cell_suppressed: bool) -> str:
    return SUPPRESSED_MARK if cell_suppressed else MISSING_MARK


def _header(table: Table) -> list[str]:
    header = [PERIOD_COLUMN, *table.dimensions, table.measure]
    if table.per_1000 is not None:
        header.append(table.measure + PER_1000_SUFFIX)
    header.append(REASON_COLUMN)
    return header


def _rows(table: Table) -> Iterable[list[str | Decimal]]:
    """The data rows of csv and xlsx: key labels as text, numbers as Decimal, marks as text."""
    for cell in table.cells:
        row: list[str | Decimal] = [table.period]
        row.extend(TOTAL_LABEL if part == TOTAL else part for part in cell.key)
        row.append(SUPPRESSED_MARK if cell.value is None else cell.value)
        if table.per_1000 is not None:
            present, figure = _per_1000_of(table, cell)
            if not present:
                row.append("")
            elif figure is None:
                row.append(_unpublished_mark(cell.value is None))
            else:
                row.append(figure)
        row.append("" if cell.suppressed is None else REASON_TEXT[cell.suppressed])
        yield row


def _from_rows(
    header: Sequence[str], rows: Iterable[Sequence[str | Decimal]], legend: Sequence[str]
) -> Table:
    """Inverse of ``_header``/``_rows``."""
    header = [h.strip() for h in header]
    if len(header) < 3 or header[0] != PERIOD_COLUMN or header[-1] != REASON_COLUMN:
        raise FormatError(f"not a statistics table header: {header!r}")
    measure_at = next((i for i, h in enumerate(header) if h in MEASURES), None)
    if measure_at is None:
        raise FormatError(f"no measure column in header {header!r}")
    measure = header[measure_at]
    dimensions = tuple(header[1:measure_at])
    has_per_1000 = header[measure_at + 1 : -1] == [measure + PER_1000_SUFFIX]
    if not has_per_1000 and measure_at + 2 != len(header):
        raise FormatError(f"unexpected columns in header {header!r}")
    width = len(header)
    period = ""
    cells: list[Cell] = []
    per_1000: dict[tuple[str, ...], Decimal | None] = {}
    for number, row in enumerate(rows, start=2):
        if len(row) != width:
            raise FormatError(f"row {number}: {len(row)} fields, expected {width}")
        period = str(row[0])
        key = tuple(TOTAL if str(part) == TOTAL_LABEL else str(part) for part in row[1:measure_at])
        value = _number_or_none(row[measure_at])
        reason_text = str(row[-1])
        reason = None
        if reason_text:
            if reason_text not in _REASON_BY_TEXT:
                raise FormatError(f"row {number}: unknown {REASON_COLUMN} {reason_text!r}")
            reason = _REASON_BY_TEXT[reason_text]
        cells.append(Cell(key=key, value=value, persons=0, suppressed=reason))
        if has_per_1000 and row[measure_at + 1] != "":
            per_1000[key] = _number_or_none(row[measure_at + 1])
    return Table(
        measure=measure,
        dimensions=dimensions,
        period=period,
        cells=tuple(cells),
        legend=tuple(legend),
        per_1000=per_1000 if has_per_1000 else None,
    )


def _number_or_none(field: str | Decimal) -> Decimal | None:
    if isinstance(field, Decimal):
        return field
    if field in (SUPPRESSED_MARK, MISSING_MARK):
        return None
    return _parse_decimal(field)


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def _csv_field(field: str | Decimal) -> str:
    return _plain(field).replace(".", ",") if isinstance(field, Decimal) else field


def to_csv(table: Table) -> str:
    """The csv text (without the BOM, which ``write_table`` adds)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(_header(table))
    for row in _rows(table):
        writer.writerow([_csv_field(f) for f in row])
    if table.legend:
        writer.writerow([])
        for line in table.legend:
            writer.writerow([LEGEND_PREFIX + line])
    return out.getvalue()


def from_csv(text: str) -> Table:
    """Parse :func:`to_csv` output (a leading BOM is ignored)."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    if not rows:
        raise FormatError("empty csv file")
    end = next((i for i, row in enumerate(rows) if not row), len(rows))
    legend: list[str] = []
    for row in rows[end + 1 :]:
        if not row:
            continue
        line = ";".join(row)
        if not line.startswith(LEGEND_PREFIX):
            raise FormatError(f"after the table, expected legend lines ('# ...'): {line!r}")
        legend.append(line[len(LEGEND_PREFIX) :])
    return _from_rows(rows[0], rows[1:end], legend)


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _json_number(value: Decimal) -> int | float | str:
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else _plain(value)


def _json_decimal(raw: object, what: str) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise FormatError(f"{what}: not a number: {raw!r}")
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, int | str):
        return _parse_decimal(str(raw))
    raise FormatError(f"{what}: not a number: {raw!r}")


def to_json(table: Table) -> str:
    cells: list[dict[str, Any]] = []
    for cell in table.cells:
        entry: dict[str, Any] = {
            "key": dict(zip(table.dimensions, cell.key, strict=True)),
            "value": None if cell.value is None else _json_number(cell.value),
            "suppressed": None if cell.suppressed is None else cell.suppressed.value,
        }
        present, figure = _per_1000_of(table, cell)
        if present:
            entry["per_1000"] = None if figure is None else _json_number(figure)
        cells.append(entry)
    document = {
        "format": FORMAT_ID,
        "measure": table.measure,
        "period": table.period,
        "dimensions": list(table.dimensions),
        "total": TOTAL,
        "per_1000": table.per_1000 is not None,
        "cells": cells,
        "legend": list(table.legend),
    }
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def from_json(text: str) -> Table:
    try:
        doc = json.loads(text, parse_float=Decimal, parse_int=Decimal)
        dimensions = tuple(str(d) for d in doc["dimensions"])
        cells: list[Cell] = []
        per_1000: dict[tuple[str, ...], Decimal | None] = {}
        for entry in doc["cells"]:
            key = tuple(str(entry["key"][d]) for d in dimensions)
            reason = entry.get("suppressed")
            cells.append(
                Cell(
                    key=key,
                    value=_json_decimal(entry["value"], "value"),
                    persons=0,
                    suppressed=None if reason is None else Suppression(reason),
                )
            )
            if "per_1000" in entry:
                per_1000[key] = _json_decimal(entry["per_1000"], "per_1000")
        return Table(
            measure=str(doc["measure"]),
            dimensions=dimensions,
            period=str(doc["period"]),
            cells=tuple(cells),
            legend=tuple(str(line) for line in doc.get("legend", ())),
            per_1000=per_1000 if doc.get("per_1000") else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"not a statistics table: {exc}") from exc


# --------------------------------------------------------------------------------------------
# XML
# --------------------------------------------------------------------------------------------


def to_xml(table: Table) -> bytes:
    root = ET.Element(
        "statistikk",
        {
            "format": FORMAT_ID,
            "measure": table.measure,
            "period": table.period,
            "per_1000": "true" if table.per_1000 is not None else "false",
        },
    )
    dims = ET.SubElement(root, "dimensions")
    for name in table.dimensions:
        ET.SubElement(dims, "dimension").text = name
    cells = ET.SubElement(root, "cells")
    for cell in table.cells:
        attrs: dict[str, str] = {}
        if cell.value is not None:
            attrs["value"] = _plain(cell.value)
        if cell.suppressed is not None:
            attrs["suppressed"] = cell.suppressed.value
        present, figure = _per_1000_of(table, cell)
        if present:
            attrs["per_1000"] = (
                _unpublished_mark(cell.value is None) if figure is None else _plain(figure)
            )
        element = ET.SubElement(cells, "cell", attrs)
        for name, part in zip(table.dimensions, cell.key, strict=True):
            ET.SubElement(element, "key", {"dimension": name}).text = part
    legend = ET.SubElement(root, "legend")
    for line in table.legend:
        ET.SubElement(legend, "line").text = line
    ET.indent(root, space=" ")
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


def from_xml(data: bytes) -> Table:
    from gateway.errors import GatewayError
    from gateway.validation.safe_xml import parse_xml

    try:
        root = parse_xml(data, max_bytes=max(len(data), 1))
    except GatewayError as exc:
        raise FormatError(f"not well-formed XML: {exc}") from exc
    if root.tag != "statistikk":
        raise FormatError(f"not a statistics table: root element {root.tag!r}")
    dimensions = tuple(e.text or "" for e in root.iterfind("dimensions/dimension"))
    per_1000: dict[tuple[str, ...], Decimal | None] = {}
    has_per_1000 = root.get("per_1000") == "true"
    cells: list[Cell] = []
    for element in root.iterfind("cells/cell"):
        parts = {k.get("dimension", ""): k.text or "" for k in element.iterfind("key")}
        try:
            key = tuple(parts[d] for d in dimensions)
        except KeyError as exc:
            raise FormatError(f"cell without key for dimension {exc}") from exc
        raw_value = element.get("value")
        reason = element.get("suppressed")
        try:
            suppressed = None if reason is None else Suppression(reason)
        except ValueError as exc:
            raise FormatError(str(exc)) from exc
        cells.append(
            Cell(
                key=key,
                value=None if raw_value is None else _parse_decimal(raw_value),
                persons=0,
                suppressed=suppressed,
            )
        )
        figure = element.get("per_1000")
        if figure is not None:
            has_per_1000 = True
            per_1000[key] = _number_or_none(figure)
    return Table(
        measure=root.get("measure", ""),
        dimensions=dimensions,
        period=root.get("period", ""),
        cells=tuple(cells),
        legend=tuple(e.text or "" for e in root.iterfind("legend/line")),
        per_1000=per_1000 if has_per_1000 else None,
    )


# --------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------

TABLE_SHEET = "Tabell"
LEGEND_SHEET = "Tegnforklaring"


def _xlsx_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _write_xlsx(table: Table, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = TABLE_SHEET
    header = _header(table)
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    right = Alignment(horizontal="right")
    for row in _rows(table):
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


def _read_xlsx(path: Path) -> Table:
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
    return _from_rows(header, data, lines[start:])
