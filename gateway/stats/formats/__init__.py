"""Writing (and, for tests and consumers, reading back) a published statistics table.

``write_table(table, path, fmt)`` writes one of ``FORMATS``; ``read_table(path, fmt)`` parses
csv, json, xml and xlsx back into a :class:`~gateway.stats.model.Table`. Person counts are never
written: a table read back has ``persons == 0`` in every cell.

One module per format, each describing its layout: ``csv_format``, ``json_format``,
``xml_format``, ``xlsx_format`` (and the PNG bar chart in :mod:`gateway.stats.chart`); what they
share (signs, reasons, numbers, the row model of csv and xlsx) is in ``common``.
"""

from __future__ import annotations

from pathlib import Path

from gateway.stats.formats.common import (
    FORMAT_ID,
    FORMATS,
    MISSING_MARK,
    READABLE_FORMATS,
    REASON_TEXT,
    SIGNS,
    SUPPRESSED_MARK,
    TOTAL_LABEL,
    FormatError,
)
from gateway.stats.formats.csv_format import from_csv, to_csv
from gateway.stats.formats.json_format import from_json, to_json
from gateway.stats.formats.xlsx_format import read_xlsx, write_xlsx
from gateway.stats.formats.xml_format import from_xml, to_xml
from gateway.stats.model import Table

__all__ = [
    "FORMATS",
    "FORMAT_ID",
    "MISSING_MARK",
    "READABLE_FORMATS",
    "REASON_TEXT",
    "SIGNS",
    "SUPPRESSED_MARK",
    "TOTAL_LABEL",
    "FormatError",
    "from_csv",
    "from_json",
    "from_xml",
    "read_table",
    "to_csv",
    "to_json",
    "to_xml",
    "write_table",
]


def write_table(table: Table, path: Path, fmt: str) -> None:
    """Write ``table`` to ``path`` as ``fmt`` (one of ``FORMATS``). Never writes persons."""
    if fmt == "csv":
        path.write_bytes(to_csv(table).encode("utf-8-sig"))
    elif fmt == "json":
        path.write_text(to_json(table), encoding="utf-8")
    elif fmt == "xml":
        path.write_bytes(to_xml(table))
    elif fmt == "xlsx":
        write_xlsx(table, path)
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
        return read_xlsx(path)
    raise FormatError(f"cannot read format {fmt!r} (one of {', '.join(READABLE_FORMATS)})")
