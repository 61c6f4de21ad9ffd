"""The statistics mirror, the register dimensions, contact types, shares, the 90+ exclusion and
the published tables, against small hand-made stores (``tests.test_stats_core``'s dataset and
builder)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.stats.build import build_table
from gateway.stats.cube import Exclusion
from gateway.stats.mirror import mirror_directory, sync
from gateway.stats.model import TOTAL, Suppression
from gateway.stats.published import PUBLISHED
from gateway.stats.reference import import_residence
from gateway.stats.suppression import determined_cells, lines_of
from gateway.store import Store
from gateway.store.engine import Engine
from tests.test_stats_core import _Db, db

__all__ = ["db"]

T = TOTAL


def _values(table: object) -> dict[tuple[str, ...], Decimal | None]:
    return {c.key: c.value for c in table.cells}  # type: ignore[attr-defined]


def _mirror(store: Store, tmp_path: Path) -> Path:
    """The store's mirror directory; on PostgreSQL (which keeps none beside a file) one of
    the test's, so that the mirror is tested on both engines."""
    assert store.database is not None
    return mirror_directory(store.database) or tmp_path / "pg.stats"


def test_the_mirror_follows_new_bills_overrides_and_credits(
    db: Engine, store: Store, tmp_path: Path
) -> None:
    mirror = _mirror(store, tmp_path)

    def count() -> dict[tuple[str, ...], Decimal | None]:
        return _values(
            build_table(db, measure="kontakter", by=(), period="2023-T1", mirror=mirror)
        )

    assert count() == {(): Decimal(18)}
    assert (mirror / "manifest.json").is_file()
    d = _Db.__new__(_Db)
    d.engine = db
    d.message = int(db.rows("SELECT MIN(id) FROM messages")[0][0])
    d.position = 1000
    new = d.bill(3, "lege", "2023-02-20T10:00:00", 15000, (1,))
    assert count() == {(): Decimal(19)}
    store.casework.record_override(new, decision="avvist", amount_ore=0, reason="x", by="kari")
    assert count() == {(): Decimal(18)}
    # The mirror equals a fresh read of the whole store.
    kept = sync(db, mirror)
    fresh = sync(db, tmp_path / "fresh.stats")
    assert (kept.columns["counted"] == fresh.columns["counted"]).all()
    assert (kept.columns["bill_id"] == fresh.columns["bill_id"]).all()


def test_residence_reimport_reaches_the_mirror(db: Engine, store: Store, tmp_path: Path) -> None:
    mirror = _mirror(store, tmp_path)
    before = _values(
        build_table(db, measure="pasienter", by=("kommune",), period="2023-T1", mirror=mirror)
    )
    assert ("5001",) not in before
    moved = tmp_path / "moved.csv"
    moved.write_text("patient_id,kommune\nP07,5001\n", encoding="utf-8")
    import_residence(db, moved)
    after = build_table(db, measure="pasienter", by=("kommune",), period="2023-T1", mirror=mirror)
    assert ("5001",) in {c.key for c in after.cells}


def test_ninety_plus_excluded_at_municipality_level_but_in_the_totals(
    store: Store, tmp_path: Path
) -> None:
    engine = store.engine
    d = _Db(engine)
    # 6 patients aged 30 and 2 aged 93 in Utsira, 6 aged 93 in Oslo
    from tests import test_stats_core as core

    for n in range(20, 34):
        core._SEX[n] = "K"
        core._BORN[n] = "1993-01-01" if n < 26 else "1930-01-01"
        d.bill(n, "lege", "2023-02-10T10:00:00", 15000, (1,))
    residence = tmp_path / "r.csv"
    residence.write_text(
        "patient_id,kommune\n"
        + "".join(f"P{n:02d},1151\n" for n in range(20, 28))
        + "".join(f"P{n:02d},0301\n" for n in range(28, 34)),
        encoding="utf-8",
    )
    import_residence(engine, residence)
    table = build_table(engine, measure="kontakter", by=("kommune", "aldersgruppe"), period="2023")
    cells = {c.key: (c.value, c.suppressed) for c in table.cells}
    assert ("1151", "90+") not in cells  # never published
    assert cells[("1151", "30-49")] == (Decimal(6), None)
    assert cells[(T, T)] == (Decimal(14), None)  # the two Utsira 90+ count in the total
    # (*, 90+) - (0301, 90+) would give Utsira's 90+ away: hidden too.
    assert cells[(T, "90+")] == (Decimal(8), None)
    assert cells[("0301", "90+")] == (None, Suppression.COMPLEMENTARY)
    assert any("90 år" in line for line in table.legend)
    # No published cell lets the hidden ones be recomputed: check with the full cell set.
    off = build_table(
        engine,
        measure="kontakter",
        by=("kommune", "aldersgruppe"),
        period="2023",
        exclusion=Exclusion(frozenset()),
    )
    assert _values(off)[("1151", "90+")] is None  # under 5 anyway: primary
    # The excluded persons are hidden cells of a pseudo municipality in the equations.
    keys = [c.key for c in table.cells] + [("unntatt:1151", "90+"), ("unntatt:1151", T)]
    hidden = {i for i, c in enumerate(table.cells) if c.value is None} | {
        len(keys) - 2,
        len(keys) - 1,
    }
    assert not determined_cells(lines_of(keys), hidden)


def test_register_dimensions_contact_types_and_avtalefysioterapi(store: Store) -> None:
    engine = store.engine
    d = _Db(engine)
    from tests import test_stats_core as core

    for n in range(40, 52):
        core._SEX[n] = "M"
        core._BORN[n] = "1980-05-05"
    for n in range(40, 46):  # physiotherapy with driftsavtale: examination, then group
        d.bill(n, "fysioterapeut", "2023-03-01T10:00:00", 20000, (1,))
    d.execute("UPDATE bills SET sender_her = '500' WHERE practitioner_type = 'fysioterapeut'")
    d.execute("UPDATE bill_lines SET code = 'A1a' WHERE kind = 'takst'")
    for n in range(46, 52):  # at a physiotherapist without driftsavtale
        bill = d.bill(n, "fysioterapeut", "2023-03-01T10:00:00", 20000, (1,))
        d.execute("UPDATE bills SET sender_her = '600' WHERE id = ?", (bill,))
        d.execute("UPDATE bill_lines SET code = 'C34a' WHERE bill_id = ?", (bill,))
    d.execute(
        "INSERT INTO practice_imports(id, source, format, sha256, rows, imported_at, content) "
        "VALUES (1, 't', 'csv', '', 2, '2023-01-01T00:00:00Z', ?)",
        (b"",),
    )
    for her, agreement, kommune in (("500", "2020-01-01", "0301"), ("600", None, "4601")):
        d.execute(
            "INSERT INTO practice_periods(import_id, her_id, name, practice_type, "
            "practitioner_type, specialties, fagomrade, municipality, valid_from, "
            "operating_agreement_from) VALUES (1, ?, 'x', 'fysioterapeut', 'fysioterapeut', "
            "'manuellterapi', 'manuellterapi', ?, '2000-01-01', ?)",
            (her, kommune, agreement),
        )
    by_type = _values(
        build_table(engine, measure="kontakter", by=("kontakttype", "driftsavtale"), period="2023")
    )
    assert by_type[("undersokelse", "ja")] == Decimal(6)
    assert by_type[("gruppebehandling", "nei")] == Decimal(6)
    practice = _values(
        build_table(engine, measure="kontakter", by=("praksiskommune", "fagomrade"), period="2023")
    )
    assert practice[("0301", "manuellterapi")] == Decimal(6)
    assert practice[("4601", "manuellterapi")] == Decimal(6)
    avtale = PUBLISHED["fysioterapi-pasienter"]
    table = build_table(
        engine,
        measure=avtale.measure,
        by=("aldersgruppe",),
        period="2023",
        only=avtale.only,
        share_of="aldersgruppe",
    )
    assert _values(table) == {("30-49",): Decimal(6), (T,): Decimal(6)}
    assert table.shares == {("30-49",): Decimal("100.0"), (T,): Decimal("100.0")}
