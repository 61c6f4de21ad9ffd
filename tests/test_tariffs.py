"""Tariff files: parsing, errors that point at line and column, import, loading, lookups."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.store import Store
from gateway.tariffs.csv_format import (
    TariffFileError,
    detect_kind,
    parse_nlk_codes,
    parse_nlk_rates,
    parse_takster,
)
from gateway.tariffs.importing import import_file, import_files
from gateway.tariffs.loading import (
    BUNDLED_TARIFFS,
    FILE_NAMES,
    load_book,
    load_book_from_dir,
)
from gateway.tariffs.model import TariffBook

TAKST_HEADER = (
    "code,practitioner,valid_from,valid_to,honorar,refusjon,egenandel,max_repetitions,"
    "repetition_percent,invalid_with,requires_takst,requires_diagnosis,requires_procedure,"
    "max_per_year,max_per_year_group,max_per_year_per_patient,min_minutes,"
    "minutes_per_repetition,time_based,description,source,confidence"
)
TAKST_COLUMNS = TAKST_HEADER.split(",")

NLK_HEADER = (
    "code,fagomrade,category,starred,valid_from,valid_to,replaces,list_code,pharmacogenetic,"
    "description,source,confidence"
)
RATE_HEADER = "category,year,kroner,samhandlertype,source,confidence"


def takst_row(**values: str) -> str:
    """A takster.csv row: defaults for a plain 2ad, overridden by ``values``."""
    row = {
        "code": "2ad",
        "practitioner": "lege",
        "valid_from": "2021-07-01",
        "honorar": "175",
        "refusjon": "15",
        "egenandel": "160",
        "requires_diagnosis": "true",
        "confidence": "high",
    }
    row.update(values)
    return ",".join(row.get(c, "") for c in TAKST_COLUMNS)


def takster(*rows: str, header: str = TAKST_HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode("utf-8")


def nlk(*rows: str) -> bytes:
    return ("\n".join((NLK_HEADER, *rows)) + "\n").encode("utf-8")


def rates(*rows: str) -> bytes:
    return ("\n".join((RATE_HEADER, *rows)) + "\n").encode("utf-8")


# --- Parsing good files -----------------------------------------------------------------------


def test_parse_takster_reads_every_field() -> None:
    content = takster(
        takst_row(),
        takst_row(
            code="501",
            practitioner="tannlege",
            valid_from="2020-01-01",
            valid_to="2030-12-31",
            honorar="900.50",
            refusjon="480.25",
            egenandel="420.25",
            max_repetitions="3",
            repetition_percent="50",
            invalid_with="207|509",
            requires_takst="1|2",
            requires_diagnosis="nei",
            requires_procedure="Ja",
            max_per_year="14",
            max_per_year_group="501|502",
            max_per_year_per_patient="0",
            min_minutes="30",
            minutes_per_repetition="30",
            time_based="TRUE",
            description='"Systematisk behandling, periodontitt"',
            confidence="carried forward from 2022",
        ),
    )
    plain, perio = parse_takster(content, "takster.csv")
    assert plain.code == "2ad" and plain.practitioner == "lege"
    assert (plain.honorar, plain.refusjon, plain.egenandel) == (
        Decimal("175"),
        Decimal("15"),
        Decimal("160"),
    )
    assert plain.valid_to is None and plain.max_repetitions is None
    assert plain.requires_diagnosis and plain.max_per_year_per_patient
    assert not plain.invalid_with and not plain.invalid_with_all and not plain.time_based
    assert perio.valid_from == date(2020, 1, 1) and perio.valid_to == date(2030, 12, 31)
    assert perio.honorar == Decimal("900.50")
    assert (perio.max_repetitions, perio.repetition_percent) == (3, 50)
    assert perio.invalid_with == frozenset({"207", "509"})
    assert perio.requires_takst == frozenset({"1", "2"})
    assert not perio.requires_diagnosis and perio.requires_procedure
    assert perio.max_per_year == 14 and perio.max_per_year_group == frozenset({"501", "502"})
    assert not perio.max_per_year_per_patient
    assert (perio.min_minutes, perio.minutes_per_repetition, perio.time_based) == (30, 30, True)
    assert perio.description == "Systematisk behandling, periodontitt"


def test_invalid_with_alle_and_alle_unntatt() -> None:
    content = takster(
        takst_row(code="1bd", honorar="72", refusjon="72", egenandel="0", invalid_with="alle"),
        takst_row(
            code="K01a",
            honorar="6774",
            refusjon="6774",
            egenandel="0",
            invalid_with="alle unntatt 3AD|1bd",
        ),
        takst_row(code="3ad", honorar="", refusjon="", egenandel=""),
        takst_row(code="701a", honorar="72", refusjon="11", egenandel="61"),
        takst_row(code="A1a", practitioner="logoped", honorar="", refusjon="", egenandel=""),
    )
    one_bd, k01a, *_ = parse_takster(content, "t.csv")
    assert one_bd.invalid_with_all and not one_bd.invalid_with
    # Every other lege code of the file except the named ones; not itself, not other types.
    assert not k01a.invalid_with_all
    assert k01a.invalid_with == frozenset({"701a"})


def test_header_in_any_order_without_optional_columns_and_with_bom() -> None:
    columns = [
        c for c in reversed(TAKST_COLUMNS) if c not in ("description", "source", "confidence")
    ]
    values = {
        "code": "1ad",
        "practitioner": "LEGE",
        "valid_from": "2023-07-01",
        "honorar": "80",
        "refusjon": "19",
        "egenandel": "61",
    }
    text = ",".join(columns) + "\r\n" + ",".join(values.get(c, "") for c in columns) + "\r\n\r\n"
    (entry,) = parse_takster(b"\xef\xbb\xbf" + text.encode(), "t.csv")
    assert entry.code == "1ad" and entry.practitioner == "lege" and entry.description == ""


def test_parse_nlk_codes_and_rates() -> None:
    codes = parse_nlk_codes(
        nlk(
            "NPU02319,KF,KF1,false,2018-01-01,,,false,false,Hemoglobin,src,illustrative",
            "NOR99302,MB,MB2,0,2024-05-01,2026-12-31,NOR99301,1,ja,,,",
        ),
        "nlk-codes.csv",
    )
    assert codes[0].code == "NPU02319" and codes[0].category == "KF1" and not codes[0].starred
    assert codes[0].replaces is None and codes[0].description == "Hemoglobin"
    assert codes[1].replaces == "NOR99301" and codes[1].valid_to == date(2026, 12, 31)
    assert codes[1].list_code and codes[1].pharmacogenetic
    parsed = parse_nlk_rates(rates("KF1,2022,11.89,PO,,high", "MB2,2026,6.82,,,"), "r.csv")
    assert parsed[0].kroner == Decimal("11.89") and parsed[0].year == 2022
    assert parsed[1].samhandlertype == "PO"


def test_detect_kind() -> None:
    assert detect_kind(takster(takst_row())) == "takster"
    assert detect_kind(nlk()) == "nlk_codes"
    assert detect_kind(b"\xef\xbb\xbf" + rates()) == "nlk_rates"
    with pytest.raises(TariffFileError, match=r"x.csv, line 1: cannot tell the kind"):
        detect_kind(b"kode,pris\n1,2\n", "x.csv")
    with pytest.raises(TariffFileError, match="empty"):
        detect_kind(b"\n\n", "x.csv")


# --- Bad rows ---------------------------------------------------------------------------------

BAD_TAKST_ROWS = [
    ({"honorar": '"12,5"', "refusjon": "", "egenandel": ""}, "honorar", "decimal separator"),
    ({"honorar": "-5", "refusjon": "", "egenandel": ""}, "honorar", "negative"),
    ({"honorar": "1.005", "refusjon": "", "egenandel": ""}, "honorar", "two decimals"),
    ({"refusjon": "abc"}, "refusjon", "not an amount"),
    ({"egenandel": "150"}, "egenandel", "honorar 328 is not refusjon 48 \\+ egenandel 150"),
    ({"refusjon": "400", "egenandel": ""}, "refusjon", "more than honorar"),
    ({"valid_from": "01.07.2021"}, "valid_from", "YYYY-MM-DD"),
    ({"valid_from": "2021-02-30"}, "valid_from", "not a valid date"),
    ({"valid_from": ""}, "valid_from", "a value is required"),
    ({"valid_to": "2020-01-01"}, "valid_to", "before valid_from"),
    ({"code": ""}, "code", "a value is required"),
    ({"code": "2a d"}, "code", "letters and digits"),
    ({"practitioner": "doctor"}, "practitioner", "not a practitioner type"),
    ({"max_repetitions": "two"}, "max_repetitions", "whole number"),
    ({"repetition_percent": "150"}, "repetition_percent", "outside 0..100"),
    ({"max_per_year": "0"}, "max_per_year", "outside 1..9999"),
    ({"max_per_year_group": "501|502"}, "max_per_year_group", "needs max_per_year"),
    ({"min_minutes": "0"}, "min_minutes", "outside"),
    ({"requires_diagnosis": "maybe"}, "requires_diagnosis", "true/false"),
    ({"invalid_with": "1ad||1ak"}, "invalid_with", "empty code"),
    ({"invalid_with": '"1ad, 1ak"'}, "invalid_with", "separate codes with"),
    ({"invalid_with": "alle unntatt"}, "invalid_with", "needs the codes"),
    ({"invalid_with": "alle|2ak"}, "invalid_with", "write 'alle'"),
    ({"requires_takst": "2ad|"}, "requires_takst", "empty code"),
    ({"confidence": "sure"}, "confidence", "high, medium, low"),
]


@pytest.mark.parametrize(("values", "column", "problem"), BAD_TAKST_ROWS)
def test_bad_takst_row_names_line_and_column(
    values: dict[str, str], column: str, problem: str
) -> None:
    content = takster(
        takst_row(),
        takst_row(
            **{"code": "2ak", "honorar": "328", "refusjon": "48", "egenandel": "280"} | values
        ),
    )
    with pytest.raises(TariffFileError, match=problem) as caught:
        parse_takster(content, "takster.csv")
    error = caught.value
    assert (error.source, error.line, error.column) == ("takster.csv", 3, column)
    assert str(error).startswith(f"takster.csv, line 3, column '{column}': ")


BAD_NLK_ROWS = [
    ("NPU 1,KF,KF1,false,2018-01-01,,,false,false,,,", "code", "letters and digits"),
    ("NPU1,kf,KF1,false,2018-01-01,,,false,false,,,", "fagomrade", "fagområde"),
    ("NPU1,KF,K-1,false,2018-01-01,,,false,false,,,", "category", "refusjonskategori"),
    ("NPU1,KF,,false,2018-01-01,,,false,false,,,", "category", "required"),
    ("NPU1,KF,KF1,stjerne,2018-01-01,,,false,false,,,", "starred", "true/false"),
    ("NPU1,KF,KF1,false,2018-01-01,2017-01-01,,false,false,,,", "valid_to", "before"),
    ("NPU1,KF,KF1,false,2018-01-01,,npu1,false,false,,,", "replaces", "replace itself"),
    ("NPU1,KF,KF1,false,2018-01-01,,,false,false,,,guess", "confidence", "high, medium"),
]


@pytest.mark.parametrize(("row", "column", "problem"), BAD_NLK_ROWS)
def test_bad_nlk_row_names_line_and_column(row: str, column: str, problem: str) -> None:
    content = nlk("NPU0,KF,KF1,false,2018-01-01,,,false,false,,,", row)
    with pytest.raises(TariffFileError, match=problem) as caught:
        parse_nlk_codes(content, "nlk-codes.csv")
    assert (caught.value.line, caught.value.column) == (3, column)


BAD_RATE_ROWS = [
    ("KF1,22,11.89,PO,,", "year", "outside 1990..2199"),
    ("KF1,,11.89,PO,,", "year", "required"),
    ("KF1,2022,,PO,,", "kroner", "required"),
    ("KF1,2022,11.8.9,PO,,", "kroner", "not an amount"),
    ("KF1,2022,11.89,po,,", "samhandlertype", "samhandlertype"),
    ("MB2,2022,7.00,LR,,", "year", "already has a rate on line 2"),
]


@pytest.mark.parametrize(("row", "column", "problem"), BAD_RATE_ROWS)
def test_bad_rate_row_names_line_and_column(row: str, column: str, problem: str) -> None:
    with pytest.raises(TariffFileError, match=problem) as caught:
        parse_nlk_rates(rates("MB2,2022,6.82,PO,,", row), "nlk-rates.csv")
    assert (caught.value.line, caught.value.column) == (3, column)


def test_duplicate_versions_are_refused() -> None:
    with pytest.raises(TariffFileError, match="already on line 2") as caught:
        parse_takster(takster(takst_row(), takst_row(code="2AD")), "t.csv")
    assert (caught.value.line, caught.value.column) == (3, "valid_from")
    # Same code for another practitioner type, or from another date, is fine.
    parse_takster(
        takster(
            takst_row(), takst_row(practitioner="psykolog"), takst_row(valid_from="2023-07-01")
        ),
        "t.csv",
    )
    with pytest.raises(TariffFileError, match="already on line 2"):
        parse_nlk_codes(
            nlk("NPU1,KF,KF1,false,2018-01-01,,,,,,,", "npu1,KF,KF2,false,2018-01-01,,,,,,,"),
            "n.csv",
        )


def test_structural_problems() -> None:
    with pytest.raises(TariffFileError, match=r"line 3: the row has 3 fields but the header"):
        parse_takster(takster(takst_row(), "2ad,lege,2021-07-01"), "t.csv")
    with pytest.raises(TariffFileError, match=r"line 1, column 'honrar': unknown column"):
        parse_takster(takster(header=TAKST_HEADER.replace("honorar", "honrar")), "t.csv")
    with pytest.raises(TariffFileError, match=r"line 1: the takster header lacks the column"):
        parse_takster(takster(header=TAKST_HEADER.replace("time_based,", "")), "t.csv")
    with pytest.raises(TariffFileError, match="names this column twice"):
        parse_nlk_rates(b"category,year,kroner,samhandlertype,year\n", "r.csv")
    with pytest.raises(TariffFileError, match="no data rows"):
        parse_nlk_rates(rates(), "r.csv")
    with pytest.raises(TariffFileError, match="empty"):
        parse_nlk_rates(b"", "r.csv")
    latin1 = rates("KF1,2022,11.89,PO,,", "KF2,2022,22.21,PO,sør,").decode().encode("latin-1")
    with pytest.raises(TariffFileError, match=r"r.csv, line 3: the file is not UTF-8"):
        parse_nlk_rates(latin1, "r.csv")
    with pytest.raises(TariffFileError, match=r"line 2: not valid CSV"):
        parse_nlk_rates(rates('KF1,2022,11.89,PO,"unclosed,'), "r.csv")


def test_line_numbers_count_quoted_newlines_and_blank_lines() -> None:
    content = rates('KF1,2022,11.89,PO,"two\nlines",high', "", "KF2,2022,22.21,PO,,nope")
    with pytest.raises(TariffFileError) as caught:
        parse_nlk_rates(content, "r.csv")
    assert (caught.value.line, caught.value.column) == (5, "confidence")


_CSV_ALPHABET = '0123456789abcdeKFMBPO,|.-: "\n\r'
_BODIES = st.text(alphabet=_CSV_ALPHABET, max_size=200)
_FUZZ = st.binary(max_size=200) | st.tuples(
    st.sampled_from((TAKST_HEADER, NLK_HEADER, RATE_HEADER)), _BODIES
).map(lambda hb: f"{hb[0]}\n{hb[1]}".encode())


@settings(max_examples=300, deadline=None)
@given(_FUZZ)
def test_any_bytes_parse_or_raise_tariff_file_error(content: bytes) -> None:
    for parse in (parse_takster, parse_nlk_codes, parse_nlk_rates):
        try:
            parse(content, "fuzz.csv")
        except TariffFileError as exc:
            assert str(exc).startswith("fuzz.csv")
    with contextlib.suppress(TariffFileError):
        detect_kind(content)


# --- Import and load --------------------------------------------------------------------------


def write(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


def test_import_same_file_twice_records_one_import(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "takster.csv", takster(takst_row(), takst_row(code="2ak")))
    first = import_file(store.tariff_imports, path)
    assert (first.kind, first.rows, first.unchanged) == ("takster", 2, False)
    again = import_file(store.tariff_imports, write(tmp_path, "copy.csv", path.read_bytes()))
    assert again.unchanged and again.import_id == first.import_id and again.rows == 2
    current = store.tariff_imports.current()
    assert list(current) == ["takster"]
    assert current["takster"].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert store.tariff_imports.version() == f"takster:{first.import_id}"


def test_a_bad_file_records_nothing(store: Store, tmp_path: Path) -> None:
    good = import_file(store.tariff_imports, write(tmp_path, "a.csv", takster(takst_row())))
    bad = write(tmp_path, "b.csv", takster(takst_row(code="2ak"), takst_row(honorar="x")))
    with pytest.raises(TariffFileError, match=r"b\.csv, line 3, column 'honorar'"):
        import_file(store.tariff_imports, bad)
    assert store.tariff_imports.current()["takster"].id == good.import_id
    with pytest.raises(TariffFileError, match="no such file"):
        import_file(store.tariff_imports, tmp_path / "missing.csv")
    with pytest.raises(TariffFileError, match="directory"):
        import_file(store.tariff_imports, tmp_path)


def test_import_files_is_all_or_nothing(store: Store, tmp_path: Path) -> None:
    codes = write(tmp_path, "codes.csv", nlk("NPU1,KF,KF1,false,2018-01-01,,,,,,,"))
    bad = write(tmp_path, "rates.csv", rates("KF1,2022,11,89,PO,,"))
    with pytest.raises(TariffFileError, match=r"rates\.csv, line 2"):
        import_files(store.tariff_imports, [codes, bad])
    assert store.tariff_imports.current() == {}
    same_kind = write(tmp_path, "codes2.csv", nlk("NPU2,KF,KF1,false,2018-01-01,,,,,,,"))
    with pytest.raises(TariffFileError, match="one file per kind"):
        import_files(store.tariff_imports, [codes, same_kind])
    new_rates = write(tmp_path, "r.csv", rates("KF1,2022,11.89,,,"))
    summaries = import_files(store.tariff_imports, [codes, new_rates])
    assert [(s.kind, s.rows, s.unchanged) for s in summaries] == [
        ("nlk_codes", 1, False),
        ("nlk_rates", 1, False),
    ]


def test_load_book_picks_up_a_new_version(store: Store, tmp_path: Path) -> None:
    empty = load_book(store.tariff_imports)
    assert empty.version == "none" == store.tariff_imports.version()
    assert not empty.takster and not empty.nlk_codes and not empty.nlk_rates

    import_file(store.tariff_imports, write(tmp_path, "t1.csv", takster(takst_row())))
    import_file(store.tariff_imports, write(tmp_path, "r.csv", rates("KF1,2022,11.89,PO,,")))
    first = load_book(store.tariff_imports)
    assert first.version == store.tariff_imports.version()
    entry = first.takst("2AD", "lege", date(2026, 10, 1))
    assert entry is not None and entry.honorar == Decimal("175")
    assert first.nlk_rate("KF1", 2022) is not None

    newer = takster(
        takst_row(),
        takst_row(valid_from="2026-07-01", honorar="179", refusjon="0", egenandel="179"),
    )
    import_file(store.tariff_imports, write(tmp_path, "t2.csv", newer))
    second = load_book(store.tariff_imports)
    assert second.version == store.tariff_imports.version() != first.version
    entry = second.takst("2ad", "lege", date(2026, 10, 1))
    assert entry is not None and entry.honorar == Decimal("179")
    assert second.nlk_rate("KF1", 2022) is not None  # other kinds stay in force

    # Importing the older file again makes it the one in force (a rollback is an import).
    assert not import_file(store.tariff_imports, tmp_path / "t1.csv").unchanged
    entry = load_book(store.tariff_imports).takst("2ad", "lege", date(2026, 10, 1))
    assert entry is not None and entry.honorar == Decimal("175")


def test_load_book_from_dir(tmp_path: Path) -> None:
    for name in FILE_NAMES.values():
        write(tmp_path, name, (BUNDLED_TARIFFS / name).read_bytes())
    book = load_book_from_dir(tmp_path)
    assert book.version == load_book_from_dir(BUNDLED_TARIFFS).version
    assert book.version.startswith("files:") and book.takster and book.nlk_codes
    (tmp_path / "nlk-rates.csv").unlink()
    with pytest.raises(TariffFileError, match=r"nlk-rates\.csv: no such file"):
        load_book_from_dir(tmp_path)


def test_bundled_files_import_and_load_like_the_directory(store: Store) -> None:
    paths = [BUNDLED_TARIFFS / name for name in FILE_NAMES.values()]
    summaries = import_files(store.tariff_imports, paths)
    assert {s.kind for s in summaries} == set(FILE_NAMES)
    assert all(not s.unchanged for s in summaries)
    assert all(s.unchanged for s in import_files(store.tariff_imports, paths))
    from_store, from_dir = load_book(store.tariff_imports), load_book_from_dir(BUNDLED_TARIFFS)
    assert from_store.takster == from_dir.takster
    assert from_store.nlk_codes == from_dir.nlk_codes
    assert from_store.nlk_rates == from_dir.nlk_rates


# --- Lookups by date --------------------------------------------------------------------------


def dated_book() -> TariffBook:
    content = takster(
        takst_row(
            code="1ad",
            valid_from="2020-07-01",
            valid_to="2023-06-30",
            honorar="73",
            refusjon="15",
            egenandel="58",
        ),
        takst_row(code="1ad", valid_from="2023-07-01", honorar="80", refusjon="19", egenandel="61"),
        takst_row(
            code="1be",
            valid_from="2020-07-01",
            valid_to="2023-06-30",
            honorar="65",
            refusjon="65",
            egenandel="0",
        ),
        # An open older version and a newer one that overlaps it: the latest start wins.
        takst_row(code="701a", valid_from="2020-07-01", honorar="60", refusjon="1", egenandel="59"),
        takst_row(
            code="701a", valid_from="2023-07-01", honorar="72", refusjon="11", egenandel="61"
        ),
    )
    codes = nlk(
        "NOR99301,MB,MB5,false,2018-01-01,2024-04-30,,,,,,",
        "NOR99302,MB,MB2,false,2024-05-01,,NOR99301,,,,,",
        "NOR99303,MB,MB2,false,2024-05-01,,NOR00000,,,,,",
        "NPU1,KF,KF1,false,2018-01-01,2022-12-31,,,,,,",
    )
    return TariffBook.build(
        "test", parse_takster(content, "t.csv"), parse_nlk_codes(codes, "n.csv"), ()
    )


@pytest.mark.parametrize(
    ("code", "day", "honorar"),
    [
        ("1ad", date(2020, 6, 30), None),  # before the first fradato
        ("1ad", date(2020, 7, 1), Decimal("73")),  # on fradato
        ("1ad", date(2023, 6, 30), Decimal("73")),  # on tildato
        ("1ad", date(2023, 7, 1), Decimal("80")),  # the next version from its fradato
        ("1ad", date(2099, 1, 1), Decimal("80")),  # open-ended
        ("1be", date(2023, 6, 30), Decimal("65")),
        ("1be", date(2023, 7, 1), None),  # after tildato, no successor
        ("701a", date(2023, 6, 30), Decimal("60")),
        ("701a", date(2023, 7, 1), Decimal("72")),  # overlapping versions: latest start wins
    ],
)
def test_takst_lookup_by_date(code: str, day: date, honorar: Decimal | None) -> None:
    entry = dated_book().takst(code, "lege", day)
    assert (entry.honorar if entry is not None else None) == honorar


def test_nlk_lookup_by_date_and_category_of_a_replacing_code() -> None:
    book = dated_book()
    assert book.nlk("npu1", date(2022, 12, 31)) is not None
    assert book.nlk("NPU1", date(2023, 1, 1)) is None
    assert book.nlk("NOR99301", date(2024, 5, 1)) is None
    new = book.nlk("NOR99302", date(2026, 1, 1))
    assert new is not None and new.category == "MB2"
    assert book.category_of(new, date(2026, 1, 1)) == "MB5"
    unknown_predecessor = book.nlk("NOR99303", date(2026, 1, 1))
    assert unknown_predecessor is not None
    assert book.category_of(unknown_predecessor, date(2026, 1, 1)) == "MB2"
