"""The json format of a statistics table.

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
number, or ``null`` when not published). With ``share_of`` (a dimension) a cell may have
``"share"``: its percentage of the total over that dimension, or ``null`` when not published.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from gateway.stats.formats.common import (
    FORMAT_ID,
    FormatError,
    parse_decimal,
    per_1000_of,
    plain,
    share_of,
)
from gateway.stats.model import TOTAL, Cell, Suppression, Table


def _json_number(value: Decimal) -> int | float | str:
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else plain(value)


def _json_decimal(raw: object, what: str) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise FormatError(f"{what}: not a number: {raw!r}")
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, int | str):
        return parse_decimal(str(raw))
    raise FormatError(f"{what}: not a number: {raw!r}")


def to_json(table: Table) -> str:
    cells: list[dict[str, Any]] = []
    for cell in table.cells:
        entry: dict[str, Any] = {
            "key": dict(zip(table.dimensions, cell.key, strict=True)),
            "value": None if cell.value is None else _json_number(cell.value),
            "suppressed": None if cell.suppressed is None else cell.suppressed.value,
        }
        present, figure = per_1000_of(table, cell)
        if present:
            entry["per_1000"] = None if figure is None else _json_number(figure)
        present, figure = share_of(table, cell)
        if present:
            entry["share"] = None if figure is None else _json_number(figure)
        cells.append(entry)
    document = {
        "format": FORMAT_ID,
        "measure": table.measure,
        "period": table.period,
        "dimensions": list(table.dimensions),
        "total": TOTAL,
        "per_1000": table.per_1000 is not None,
        "share_of": table.share_of if table.shares is not None else None,
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
        shares: dict[tuple[str, ...], Decimal | None] = {}
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
            if "share" in entry:
                shares[key] = _json_decimal(entry["share"], "share")
        share_dimension = doc.get("share_of")
        return Table(
            measure=str(doc["measure"]),
            dimensions=dimensions,
            period=str(doc["period"]),
            cells=tuple(cells),
            legend=tuple(str(line) for line in doc.get("legend", ())),
            per_1000=per_1000 if doc.get("per_1000") else None,
            share_of=None if share_dimension is None else str(share_dimension),
            shares=shares if share_dimension is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"not a statistics table: {exc}") from exc
