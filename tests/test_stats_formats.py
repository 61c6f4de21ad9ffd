"""Output formats of ``gateway stats export``: every readable format round-trips, persons are
never written, the xlsx opens with openpyxl, the png is a real picture."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from decimal import Decimal
from pathlib import Path

import matplotlib
import pytest
from openpyxl import load_workbook

from gateway.stats.chart import chart_cells, write_chart
from gateway.stats.formats import (
    FORMATS,
    READABLE_FORMATS,
    SUPPRESSED_MARK,
    FormatError,
    from_csv,
    read_table,
    to_csv,
    write_table,
)
from gateway.stats.model import TOTAL, Cell, Suppression, Table

P, C = Suppression.PRIMARY, Suppression.COMPLEMENTARY
# Persons numbers that appear nowhere else in any output: if one shows up, persons leaked.
PERSONS = (777, 7771, 77712, 777123, 7771234, 77712345)


def _cell(key: tuple[str, ...], value: str | None, n: int, why: Suppression | None = None) -> Cell:
    return Cell(
        key=key, value=None if value is None else Decimal(value), persons=PERSONS[n], suppressed=why
    )


def sample_table(*, per_1000: bool = False) -> Table:
    """kommune x kjonn with totals; 0301/M primary, 0301/K complementary, and so on."""
    cells = (
        _cell(("0301", "K"), None, 0, C),
        _cell(("0301", "M"), None, 1, P),
        _cell(("0301", TOTAL), "1250", 2),
        _cell(("1103", "K"), "412.50", 3),
        _cell(("1103", "M"), "99", 4),
        _cell(("1103", TOTAL), "511.5", 5),
        _cell((TOTAL, "K"), "1000", 0),
        _cell((TOTAL, "M"), "761.5", 1),
        _cell((TOTAL, TOTAL), "1761.5", 2),
    )
    figures: dict[tuple[str, ...], Decimal | None] | None = None
    if per_1000:
        figures = {
            ("0301", "K"): None,
            ("0301", "M"): None,
            ("0301", TOTAL): Decimal("1.9"),
            ("1103", "K"): Decimal("12.345"),
            ("1103", TOTAL): None,  # published value, but no population figure
        }
    return Table(
        measure="refusjon",
        dimensions=("kommune", "kjonn"),
        period="2023-T1",
        cells=cells,
        legend=(
            "Prikket (:) - primær: færre enn 5 personer; komplementær: skjult for å hindre "
            "tilbakeregning.",
            "Prikkede celler er med i summene; «I alt» = alle; semikolon; i teksten.",
        ),
        per_1000=figures,
    )


def _without_persons(table: Table) -> Table:
    return dataclasses.replace(
        table, cells=tuple(dataclasses.replace(c, persons=0) for c in table.cells)
    )


TABLES = {
    "plain": sample_table(),
    "per_1000": sample_table(per_1000=True),
    "one_dimension": Table(
        measure="pasienter",
        dimensions=("fagomrade",),
        period="2023",
        cells=(
            _cell(("lege",), "12", 0),
            _cell(("tannlege",), None, 1, P),
            _cell((TOTAL,), "15", 2),
        ),
        legend=(),
    ),
    "empty_per_1000": dataclasses.replace(sample_table(), per_1000={}),
}


@pytest.mark.parametrize("fmt", READABLE_FORMATS)
@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_readable_format_round_trips(tmp_path: Path, fmt: str, name: str) -> None:
    table = TABLES[name]
    path = tmp_path / f"t.{fmt}"
    write_table(table, path, fmt)
    assert read_table(path, fmt) == _without_persons(table)


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_format_writes_persons(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"t.{fmt}"
    write_table(sample_table(per_1000=True), path, fmt)
    data = path.read_bytes()
    if fmt == "xlsx":
        book = load_workbook(path)
        data = "\n".join(
            str(v) for s in book.worksheets for row in s.iter_rows(values_only=True) for v in row
        ).encode()
        assert b"1250" in data  # the check below looks at the real values
    if fmt == "png":  # compressed: look at the same drawing as text instead
        with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text
            write_chart(sample_table(per_1000=True), path, image_format="svg")
        data = path.read_bytes()
        assert b"0301" in data and b"Refusjon (kr)" in data
    for persons in PERSONS:
        assert str(persons).encode() not in data


def test_csv_is_excel_friendly_and_machine_readable(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_table(sample_table(per_1000=True), path, "csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    text = raw.decode("utf-8-sig")
    data, _, legend = text.partition("\r\n\r\n")
    rows = list(csv.DictReader(io.StringIO(data), delimiter=";"))
    assert list(rows[0]) == [
        "periode",
        "kommune",
        "kjonn",
        "refusjon",
        "refusjon per 1000 innbyggere",
        "prikking",
    ]
    assert rows[0]["refusjon"] == SUPPRESSED_MARK
    assert rows[0]["prikking"].startswith("sekundær")
    assert rows[1]["prikking"].startswith("primær")
    assert rows[3]["refusjon"] == "412,50"  # decimal comma
    assert rows[3]["refusjon per 1000 innbyggere"] == "12,345"
    assert rows[4]["refusjon per 1000 innbyggere"] == ""  # no figure for this cell
    assert rows[5]["refusjon per 1000 innbyggere"] == ".."  # published value, no population
    assert rows[8]["kommune"] == rows[8]["kjonn"] == "I alt"
    lines = list(csv.reader(io.StringIO(legend), delimiter=";"))
    assert lines[0] == ["# " + sample_table().legend[0]]


def test_json_structure(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_table(sample_table(), path, "json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["measure"] == "refusjon" and doc["period"] == "2023-T1"
    assert doc["dimensions"] == ["kommune", "kjonn"]
    assert doc["cells"][1] == {
        "key": {"kommune": "0301", "kjonn": "M"},
        "value": None,
        "suppressed": "primary",
    }
    assert doc["cells"][3]["value"] == 412.5
    assert doc["cells"][2]["value"] == 1250
    assert doc["cells"][8]["key"] == {"kommune": "*", "kjonn": "*"}
    assert len(doc["legend"]) == 2


def test_json_keeps_a_value_a_float_cannot_hold(tmp_path: Path) -> None:
    table = dataclasses.replace(
        TABLES["one_dimension"],
        cells=(_cell(("lege",), "12345678901234567.25", 0),),
    )
    path = tmp_path / "t.json"
    write_table(table, path, "json")
    assert read_table(path, "json") == _without_persons(table)


def test_xlsx_has_values_marks_bold_header_and_legend(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    write_table(sample_table(per_1000=True), path, "xlsx")
    book = load_workbook(path)
    assert book.sheetnames == ["Tabell", "Tegnforklaring"]
    sheet = book["Tabell"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("periode", "kommune", "kjonn", "refusjon")
    assert all(c.font.bold for c in sheet[1])
    assert rows[1][3] == ":" and rows[2][3] == ":"
    assert rows[3][3] == 1250 and isinstance(rows[3][3], int)
    assert rows[4][3] == 412.5 and isinstance(rows[4][3], float)
    assert rows[9][1:3] == ("I alt", "I alt")
    legend = [r[0] for r in book["Tegnforklaring"].iter_rows(values_only=True) if r[0]]
    assert any(str(line).startswith(":") for line in legend)
    assert sample_table().legend[0] in legend


def test_png_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "t.png"
    write_table(sample_table(), path, "png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 5_000


def test_chart_draws_the_first_dimension_from_totals() -> None:
    bars = chart_cells(sample_table())
    assert [label for label, _ in bars] == ["0301", "1103"]
    # Without totals: interior cells, labelled with the whole key.
    table = dataclasses.replace(sample_table(), cells=sample_table().interior)
    assert [label for label, _ in chart_cells(table)][:2] == ["0301 / K", "0301 / M"]


def test_png_with_many_bars_and_all_suppressed(tmp_path: Path) -> None:
    cells = tuple(
        _cell((f"{i:04d}",), None if i % 3 == 0 else str(i * 10), 0, P if i % 3 == 0 else None)
        for i in range(80)
    )
    table = Table("kontakter", ("kommune",), "2023-05", cells, legend=())
    write_table(table, tmp_path / "many.png", "png")
    only_suppressed = dataclasses.replace(table, cells=cells[:1])
    write_table(only_suppressed, tmp_path / "none.png", "png")
    assert (tmp_path / "none.png").read_bytes().startswith(b"\x89PNG")


def test_unknown_format_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FormatError):
        write_table(sample_table(), tmp_path / "t.txt", "txt")
    with pytest.raises(FormatError):
        read_table(tmp_path / "t.png", "png")
    with pytest.raises(FormatError):
        from_csv("a;b\n1;2\n")
    bad_reason = to_csv(sample_table()).replace("primær", "tertiær")
    with pytest.raises(FormatError, match="prikking"):
        from_csv(bad_reason)
    (tmp_path / "bad.xml").write_bytes(b"<statistikk><cells>")
    with pytest.raises(FormatError):
        read_table(tmp_path / "bad.xml", "xml")
    (tmp_path / "bad.json").write_text('{"measure": "x"}', encoding="utf-8")
    with pytest.raises(FormatError):
        read_table(tmp_path / "bad.json", "json")
