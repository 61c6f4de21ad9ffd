"""The xml format of a statistics table.

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
published) when the table has per-1,000 figures; ``share_of="<dimension>"`` on the root and
``share="..."`` per cell when it has percentage shares.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

from gateway.stats.formats.common import (
    FORMAT_ID,
    FormatError,
    number_or_none,
    parse_decimal,
    per_1000_of,
    plain,
    share_of,
    unpublished_mark,
)
from gateway.stats.model import Cell, Suppression, Table


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
    if table.shares is not None and table.share_of is not None:
        root.set("share_of", table.share_of)
    dims = ET.SubElement(root, "dimensions")
    for name in table.dimensions:
        ET.SubElement(dims, "dimension").text = name
    cells = ET.SubElement(root, "cells")
    for cell in table.cells:
        attrs: dict[str, str] = {}
        if cell.value is not None:
            attrs["value"] = plain(cell.value)
        if cell.suppressed is not None:
            attrs["suppressed"] = cell.suppressed.value
        present, figure = per_1000_of(table, cell)
        if present:
            attrs["per_1000"] = (
                unpublished_mark(cell.value is None) if figure is None else plain(figure)
            )
        present, figure = share_of(table, cell)
        if present:
            attrs["share"] = (
                unpublished_mark(cell.value is None) if figure is None else plain(figure)
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
    shares: dict[tuple[str, ...], Decimal | None] = {}
    shares_of = root.get("share_of")
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
                value=None if raw_value is None else parse_decimal(raw_value),
                persons=0,
                suppressed=suppressed,
            )
        )
        figure = element.get("per_1000")
        if figure is not None:
            has_per_1000 = True
            per_1000[key] = number_or_none(figure)
        share = element.get("share")
        if share is not None:
            shares[key] = number_or_none(share)
    return Table(
        measure=root.get("measure", ""),
        dimensions=dimensions,
        period=root.get("period", ""),
        cells=tuple(cells),
        legend=tuple(e.text or "" for e in root.iterfind("legend/line")),
        per_1000=per_1000 if has_per_1000 else None,
        share_of=shares_of,
        shares=shares if shares_of is not None else None,
    )
