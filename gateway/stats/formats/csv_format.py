"""The csv format of a statistics table.

UTF-8 with a byte order mark, ``;`` separated, decimal comma: what Excel with Norwegian settings
opens correctly with a double click (and ``pandas.read_csv(sep=";", decimal=",")`` reads).
Columns: ``periode``, one column per dimension, the measure (e.g. ``refusjon``), optionally
``<measure> per 1000 innbyggere``, and ``prikking`` (empty, or the reason). After the data comes
one empty line and then the legend, one line each, starting with ``# ``: a machine reads rows
until the first empty line.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from gateway.stats.formats.common import (
    LEGEND_PREFIX,
    FormatError,
    data_rows,
    header_row,
    plain,
    table_from_rows,
)
from gateway.stats.model import Table


def _csv_field(field: str | Decimal) -> str:
    return plain(field).replace(".", ",") if isinstance(field, Decimal) else field


def to_csv(table: Table) -> str:
    """The csv text (without the BOM, which ``write_table`` adds)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header_row(table))
    for row in data_rows(table):
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
    return table_from_rows(rows[0], rows[1:end], legend)
