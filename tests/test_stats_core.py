"""Statistics core: periods, reference imports, the SQL aggregation and whole tables, against a
small hand-made store. Every expected number is worked out by hand in the comments below.

The dataset (period 2023-T1 = 2023-01-01 .. 2023-04-30):

======  =====  ==========  ====  =========================================================
patient  sex   born        home  counted bills (practitioner type, approved kroner, takster)
======  =====  ==========  ====  =========================================================
P1      K     1990-01-01  0301  lege 150.00 (1), lege 200.50 (2+3), tannlege 300 (2)
P2      K     1990-01-01  0301  lege 150 (1), tannlege 300 (2) on 2023-04-30T23:59:59
P3      K     1990-01-01  0301  lege 150 (1), tannlege 300 (2)
P4      M     1990-01-01  0301  lege 150 (1), tannlege 300 (2)
P5      M     1990-01-01  0301  lege 150 (1), tannlege 300 (2)
P6      M     2007-03-15  0301  lege 150 (1) on 2023-03-14: aged 15
P7      K     1930-06-01  4601  lege 150 (1)
P8      K     1930-06-01  4601  lege 150 (1)
P9      M     1930-06-01  4601  lege 150 (1)
P10     M     1930-06-01  4601  lege 150 (1)
P11     K     1950-02-01  -     tannlege 300 (2)
P12     -     -           -     tannlege, engine avvist, overridden to godkjent 123.45 (2)
======  =====  ==========  ====  =========================================================

Not counted: P1 lege on 2023-05-01T00:00 (T2) and on 2022-12-31T23:59; P7 lege avvist; P8 lege
credited by a credit bill (both out); P9 lege approved by the engine, overridden to avvist.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.stats.build import StatsError, build_table
from gateway.stats.model import TOTAL, Cell, Suppression
from gateway.stats.periods import parse_period
from gateway.stats.query import aggregate
from gateway.stats.reference import ensure_tables, import_population, import_residence
from gateway.store import Store
from gateway.store.engine import Engine, Transaction

T = TOTAL
P = Suppression.PRIMARY
C = Suppression.COMPLEMENTARY


# --- the dataset ------------------------------------------------------------------------------


def _pid(n: int) -> str:
    return f"P{n:02d}"  # not national ids: the statistics never look inside patient_id


_SEX = {1: "K", 2: "K", 3: "K", 4: "M", 5: "M", 6: "M", 7: "K", 8: "K", 9: "M", 10: "M", 11: "K"}
_BORN = {
    **{n: "1990-01-01" for n in range(1, 6)},
    6: "2007-03-15",
    **{n: "1930-06-01" for n in range(7, 11)},
    11: "1950-02-01",
}


class _Db:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.transaction("test data") as tx:
            received = tx.insert(
                "INSERT INTO received(received_at, source, source_ref, sha256, size, raw, "
                "outcome) VALUES ('2023-05-02T00:00:00+00:00', 'spool', 'x', 'x', 0, ?, "
                "'accepted') RETURNING id",
                (b"",),
            )
            self.message = tx.insert(
                "INSERT INTO messages(received_id) VALUES (?) RETURNING id", (received,)
            )
        self.position = 0

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        with self.engine.transaction("test data") as tx:
            tx.execute(sql, params)

    def bill(
        self,
        patient: int,
        ptype: str,
        when: str,
        ore: int,
        takster: tuple[int, ...],
        *,
        status: str = "godkjent",
        kreditering: int = 0,
    ) -> int:
        self.position += 1
        with self.engine.transaction("test data") as tx:
            return self._bill(tx, patient, ptype, when, ore, takster, status, kreditering)

    def _bill(
        self,
        tx: Transaction,
        patient: int,
        ptype: str,
        when: str,
        ore: int,
        takster: tuple[int, ...],
        status: str,
        kreditering: int,
    ) -> int:
        bill_id = tx.insert(
            "INSERT INTO bills(message_id, position, sender_her, practitioner_id, guid, "
            "regning_nr, dato_tid, kreditering, betalt_egenandel, patient_id, patient_id_type, "
            "sum_refusjon_ore, status, approved_ore, patient_birth_date, patient_sex, "
            "practitioner_type) VALUES (?, ?, '1', '1', ?, ?, ?, ?, 0, ?, 'FNR', ?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            (
                self.message,
                self.position,
                f"g{self.position}",
                str(self.position),
                when,
                kreditering,
                _pid(patient),
                ore,
                status,
                ore if status == "godkjent" else 0,
                _BORN.get(patient),
                _SEX.get(patient),
                ptype,
            ),
        )
        for i, antall in enumerate(takster):
            tx.execute(
                "INSERT INTO bill_lines(bill_id, position, kind, code, antall) "
                "VALUES (?, ?, 'takst', 'x', ?)",
                (bill_id, i, antall),
            )
        tx.execute(
            "INSERT INTO bill_lines(bill_id, position, kind, code) VALUES (?, 99, 'diagnose', 'A')",
            (bill_id,),
        )
        return bill_id


@pytest.fixture
def db(store: Store, tmp_path: Path) -> Engine:
    """The claims store (on each engine) with the bills the tests count."""
    d = _Db(store.engine)
    when = "2023-02-10T10:00:00"
    for n in range(1, 11):
        d.bill(n, "lege", "2023-03-14T10:00:00" if n == 6 else when, 15000, (1,))
    d.bill(1, "lege", "2023-01-20T09:00:00", 20050, (2, 3))
    for n in (1, 3, 4, 5, 11):
        d.bill(n, "tannlege", when, 30000, (2,))
    d.bill(2, "tannlege", "2023-04-30T23:59:59", 30000, (2,))
    overridden_in = d.bill(12, "tannlege", when, 30000, (2,), status="avvist")
    # not counted
    d.bill(1, "lege", "2023-05-01T00:00:00", 15000, (1,))
    d.bill(1, "lege", "2022-12-31T23:59:00", 15000, (1,))
    d.bill(7, "lege", when, 15000, (1,), status="avvist")
    original = d.bill(8, "lege", when, 15000, (1,))
    credit = d.bill(8, "lege", "2023-02-11T10:00:00", 15000, (1,), kreditering=1)
    d.execute("UPDATE bills SET credited_by = ? WHERE id = ?", (credit, original))
    overridden_out = d.bill(9, "lege", when, 15000, (1,))
    store.casework.record_override(
        overridden_in, decision="godkjent", amount_ore=12345, reason="ok likevel", by="kari"
    )
    store.casework.record_override(
        overridden_out, decision="avvist", amount_ore=0, reason="nei", by="kari"
    )
    residence = tmp_path / "residence.csv"
    residence.write_text(
        "patient_id,kommune\n"
        + "".join(f"{_pid(n)},0301\n" for n in range(1, 7))
        + "".join(f"{_pid(n)},4601\n" for n in range(7, 11)),
        encoding="utf-8",
    )
    assert import_residence(store.engine, residence) == 10
    return store.engine


def _table(db: Engine, measure: str, by: tuple[str, ...]) -> dict[tuple[str, ...], object]:
    table = build_table(db, measure=measure, by=by, period="2023-T1")
    assert table.dimensions == by and table.measure == measure and table.period == "2023-T1"
    return {c.key: (c.value, c.suppressed) for c in table.cells}


# --- whole tables -----------------------------------------------------------------------------


def test_kontakter_by_fagomrade_and_kommune(db: Engine) -> None:
    table = build_table(db, measure="kontakter", by=("fagomrade", "kommune"), period="2023-T1")
    got = {c.key: (c.value, c.persons, c.suppressed) for c in table.cells}
    # lege 0301: P1 x2, P2-P6 = 7 bills, 6 persons; lege 4601: P7-P10 = 4, 4 persons (primary);
    # tannlege 0301: P1-P5 = 5, 5; tannlege ukjent: P11, P12 = 2, 2 (primary). The two rows then
    # have one hidden cell each, so the other cell of each row goes too (complementary). Totals:
    # lege 11 bills / 10 persons, tannlege 7 / 7, 0301: 12 / 6 (P1-P6), 4601: 4 / 4 (primary),
    # ukjent 2 / 2 (primary), all 18 / 12.
    assert got == {
        ("lege", "0301"): (None, 6, C),
        ("lege", "4601"): (None, 4, P),
        ("tannlege", "0301"): (None, 5, C),
        ("tannlege", "ukjent"): (None, 2, P),
        ("lege", T): (Decimal(11), 10, None),
        ("tannlege", T): (Decimal(7), 7, None),
        (T, "0301"): (Decimal(12), 6, None),
        (T, "4601"): (None, 4, P),
        (T, "ukjent"): (None, 2, P),
        (T, T): (Decimal(18), 12, None),
    }
    assert [c.key for c in table.interior] == [
        ("lege", "0301"),
        ("lege", "4601"),
        ("tannlege", "0301"),
        ("tannlege", "ukjent"),
    ]
    assert table.legend == (
        "Celler med færre enn 5 personer er ikke publisert (primærprikket): 4 celler.",
        "2 celler er skjult for at de ikke skal kunne regnes ut fra summene (sekundærprikket).",
        "Prikkede celler er likevel med i summene.",
    )
    assert table.per_1000 is None  # no population imported


def test_raw_aggregates_have_their_own_distinct_persons(db: Engine) -> None:
    cells = aggregate(db, ("praksistype", "fylke"), parse_period("2023-T1"))
    got = {a.key: (a.kontakter, a.ore, a.takster, a.persons) for a in cells}
    assert got == {
        # lege 03: P1 150+200.50, P2-P6 150 each; takster 1+5+1*5
        ("lege", "03"): (7, 15000 * 6 + 20050, 11, 6),
        ("lege", "46"): (4, 60000, 4, 4),
        ("tannlege", "03"): (5, 150000, 10, 5),
        ("tannlege", "ukjent"): (2, 30000 + 12345, 4, 2),
        ("lege", T): (11, 15000 * 10 + 20050, 15, 10),
        ("tannlege", T): (7, 150000 + 42345, 14, 7),
        (T, "03"): (12, 110050 + 150000, 21, 6),  # 6 persons, not 6 + 5
        (T, "46"): (4, 60000, 4, 4),
        (T, "ukjent"): (2, 42345, 4, 2),
        (T, T): (18, 170050 + 192345, 29, 12),
    }


def test_refusjon_by_fagomrade_nothing_suppressed(db: Engine) -> None:
    # lege: 10 x 150.00 + 200.50; tannlege: 6 x 300.00 + 123.45 (the override's amount)
    assert _table(db, "refusjon", ("fagomrade",)) == {
        ("lege",): (Decimal("1700.50"), None),
        ("tannlege",): (Decimal("1923.45"), None),
        (T,): (Decimal("3623.95"), None),
    }


def test_takster_by_kjonn(db: Engine) -> None:
    # K (P1 P2 P3 P7 P8 P11): lege 1+5+1+1+1+1, tannlege 2+2+2+2 = 18, 6 persons
    # M (P4 P5 P6 P9 P10): lege 5 x 1, tannlege 2+2 = 9, 5 persons
    # ukjent (P12): 2, 1 person -> primary; M is then the smallest of the line -> complementary
    assert _table(db, "takster", ("kjonn",)) == {
        ("K",): (Decimal(18), None),
        ("M",): (None, C),
        ("ukjent",): (None, P),
        (T,): (Decimal(29), None),
    }


def test_pasienter_by_aldersgruppe(db: Engine) -> None:
    # 30-49: P1-P5; 0-15: P6 (15 the day before the 16th birthday); 90+: P7-P10 (92);
    # 67-79: P11 (73); ukjent: P12. Four hidden cells in one line: nothing to add.
    table = build_table(db, measure="pasienter", by=("aldersgruppe",), period="2023-T1")
    assert {c.key: (c.value, c.suppressed) for c in table.cells} == {
        ("0-15",): (None, P),
        ("30-49",): (Decimal(5), None),
        ("67-79",): (None, P),
        ("90+",): (None, P),
        ("ukjent",): (None, P),
        (T,): (Decimal(12), None),
    }
    assert table.legend[1].startswith("0 celler er skjult")


def test_kontakter_per_pasient_by_praksistype(db: Engine) -> None:
    assert _table(db, "kontakter-per-pasient", ("praksistype",)) == {
        ("lege",): (Decimal("1.10"), None),  # 11 / 10
        ("tannlege",): (Decimal("1.00"), None),  # 7 / 7
        (T,): (Decimal("1.50"), None),  # 18 / 12
    }


def test_land_and_per_1000(db: Engine, tmp_path: Path) -> None:
    population = tmp_path / "pop.csv"
    population.write_text(
        "year,kommune,aldersgruppe,kjonn,count\n"
        "2023,0301,30-49,K,3000\n2023,0301,30-49,M,3000\n2023,4601,90+,K,2000\n"
        "2022,0301,30-49,K,1\n",
        encoding="utf-8",
    )
    assert import_population(db, population) == 4
    table = build_table(db, measure="kontakter", by=("kommune",), period="2023-T1")
    assert {c.key: c.value for c in table.cells} == {
        ("0301",): Decimal(12),
        ("4601",): None,
        ("ukjent",): None,
        (T,): Decimal(18),
    }
    # 12 per 6000 inhabitants, 18 per 8000 inhabitants
    assert table.per_1000 == {
        ("0301",): Decimal("2.00"),
        ("4601",): None,
        ("ukjent",): None,
        (T,): Decimal("2.25"),
    }
    # land: Norge 16 bills / 10 persons, ukjent 2 / 2 (primary) -> Norge complementary
    assert _table(db, "kontakter", ("land",)) == {
        ("Norge",): (None, C),
        ("ukjent",): (None, P),
        (T,): (Decimal(18), None),
    }
    # no population for 2024: no per-inhabitant figures
    later = build_table(db, measure="kontakter", by=("fylke",), period="2024")
    assert later.per_1000 is None
    assert [(c.key, c.value, c.persons) for c in later.cells] == [((T,), None, 0)]


def test_age_on_the_birthday_itself(store: Store) -> None:
    d = _Db(store.engine)
    _BORN[20] = "2007-03-15"
    _BORN[21] = "2008-02-29"
    try:
        d.bill(20, "lege", "2023-03-15T08:00:00", 100, ())  # 16 today
        d.bill(21, "lege", "2024-02-28T08:00:00", 100, ())  # 15 until 29 Feb
        d.bill(21, "lege", "2023-03-01T08:00:00", 100, ())  # 15 (born 2008)
    finally:
        del _BORN[20], _BORN[21]
    cells = aggregate(store.engine, ("aldersgruppe",), parse_period("2023"))
    later = aggregate(store.engine, ("aldersgruppe",), parse_period("2024-02"))
    assert {a.key: a.kontakter for a in cells} == {("16-29",): 1, ("0-15",): 1, (T,): 2}
    assert {a.key: a.kontakter for a in later} == {("0-15",): 1, (T,): 1}


# --- request validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measure", "by", "period", "message"),
    [
        ("bills", ("kommune",), "2023", "unknown measure 'bills'; valid measures: takster"),
        ("kontakter", ("by",), "2023", "unknown dimension(s) 'by'; valid dimensions: fagomrade"),
        ("kontakter", ("kommune", "fylke"), "2023", "at most one area level"),
        ("kontakter", ("kjonn", "kjonn"), "2023", "more than once: kjonn"),
        ("kontakter", ("kjonn",), "2023-T4", "invalid period '2023-T4'"),
    ],
)
def test_bad_requests(
    db: Engine, measure: str, by: tuple[str, ...], period: str, message: str
) -> None:
    with pytest.raises(StatsError) as info:
        build_table(db, measure=measure, by=by, period=period)
    assert message in str(info.value)


# --- periods ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2023", date(2023, 1, 1), date(2024, 1, 1)),
        ("2023-T1", date(2023, 1, 1), date(2023, 5, 1)),
        ("2023-T2", date(2023, 5, 1), date(2023, 9, 1)),
        ("2023-T3", date(2023, 9, 1), date(2024, 1, 1)),
        ("2023-05", date(2023, 5, 1), date(2023, 6, 1)),
        ("2023-12", date(2023, 12, 1), date(2024, 1, 1)),
    ],
)
def test_periods(text: str, start: date, end: date) -> None:
    period = parse_period(text)
    assert (period.text, period.start, period.end, period.year) == (text, start, end, start.year)


@pytest.mark.parametrize("text", ["", "23", "2023-T0", "2023-T4", "2023-13", "2023-00", "2023-5",
                                  "2023-Q1", "1899", "2023-01-01"])  # fmt: skip
def test_bad_periods(text: str) -> None:
    with pytest.raises(StatsError, match=f"invalid period {text!r}"):
        parse_period(text)


# --- reference imports ------------------------------------------------------------------------


@pytest.fixture
def empty_db(store: Store) -> Engine:
    return store.engine


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(db: Engine, sql: str) -> list[tuple[object, ...]]:
    ensure_tables(db)
    return [tuple(r) for r in db.rows(sql)]


def test_residence_import_updates_and_keeps(empty_db: Engine, tmp_path: Path) -> None:
    first = _write(tmp_path, "a.csv", "\ufeffpatient_id,kommune\nA,0301\nB,4601\n\n")
    assert import_residence(empty_db, first) == 2
    second = _write(tmp_path, "b.csv", "kommune,patient_id\n5001,B\n1103,C\n")
    assert import_residence(empty_db, second) == 2
    assert _rows(empty_db, "SELECT * FROM stats_residence ORDER BY patient_id") == [
        ("A", "0301"),
        ("B", "5001"),
        ("C", "1103"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("patient_id,kommune\nA,0301\nB,301\n", "line 3, column kommune: '301' is not a four"),
        ("patient_id,kommune\nA,0301\nB,03a1\n", "line 3, column kommune"),
        ("patient_id,kommune\n12345678901,0301\n12345678901,0302\n",
         "line 3, column patient_id: same patient as line 2"),
        ("patient_id,kommune\n,0301\n", "line 2, column patient_id: empty"),
        ("patient_id,kommune\nA,0301,x\n", "line 2: expected 2 fields, found 3"),
        ("patient,kommune\nA,0301\n", "line 1: header must be patient_id,kommune; missing column"),
        ("", "line 1: empty file"),
    ],
)  # fmt: skip
def test_residence_errors_change_nothing(
    empty_db: Engine, tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, "r.csv", text)
    with pytest.raises(StatsError) as info:
        import_residence(empty_db, path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)
    assert "12345678901" not in str(info.value)  # never a national id in an error
    assert _rows(empty_db, "SELECT * FROM stats_residence") == []


def test_residence_not_utf8(empty_db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("patient_id,kommune\nÆ,0301\n".encode("latin-1"))
    with pytest.raises(StatsError, match="not UTF-8"):
        import_residence(empty_db, path)


def test_population_import_replaces_a_year(empty_db: Engine, tmp_path: Path) -> None:
    a = _write(tmp_path, "a.csv", "year,kommune,aldersgruppe,kjonn,count\n"
               "2023,0301,0-15,K,10\n2023,0301,90+,M,2\n2022,0301,0-15,K,7\n")  # fmt: skip
    assert import_population(empty_db, a) == 3
    b = _write(tmp_path, "b.csv", "year,kommune,aldersgruppe,kjonn,count\n2023,4601,80-89,K,5\n")
    assert import_population(empty_db, b) == 1
    assert _rows(empty_db, "SELECT * FROM stats_population ORDER BY year, kommune") == [
        (2022, "0301", "0-15", "K", 7),
        (2023, "4601", "80-89", "K", 5),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("23,0301,0-15,K,1", "line 3, column year"),
        ("2023,0301,90-99,K,1", "line 3, column aldersgruppe: '90-99' is not one of 0-15, 16-29"),
        ("2023,0301,0-15,X,1", "line 3, column kjonn: 'X' is not K or M"),
        ("2023,0301,0-15,K,-1", "line 3, column count"),
        ("2023,0301,0-15,K,1.5", "line 3, column count"),
        ("2023,0301,0-15,K,2", "line 3, column kommune: same year/kommune/group/sex as line 2"),
    ],
)
def test_population_errors_change_nothing(
    empty_db: Engine, tmp_path: Path, line: str, message: str
) -> None:
    path = _write(
        tmp_path, "p.csv", f"year,kommune,aldersgruppe,kjonn,count\n2023,0301,0-15,K,1\n{line}\n"
    )
    with pytest.raises(StatsError) as info:
        import_population(empty_db, path)
    assert message in str(info.value)
    assert _rows(empty_db, "SELECT * FROM stats_population") == []


def test_no_dimensions_is_one_cell(db: Engine) -> None:
    table = build_table(db, measure="kontakter", by=(), period="2023-T1")
    assert table.cells == (Cell((), Decimal(18), 12),)
    assert table.legend == ("Ingen celler er prikket.",)
