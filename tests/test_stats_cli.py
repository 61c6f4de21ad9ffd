"""``gateway stats export|import-population|import-residence``: arguments, errors, progress.

Most tests replace ``build_table`` with a fake so they test the command, not the statistics
core; one runs the real core on a small database."""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.stats import cli as stats_cli
from gateway.stats.formats import read_table
from gateway.stats.model import TOTAL, Cell, Suppression, Table
from gateway.stats.periods import StatsError
from gateway.store import Store
from gateway.store.engine import Engine

PROJECT = Path(__file__).resolve().parents[1]

TABLE = Table(
    measure="kontakter",
    dimensions=("kommune",),
    period="2023",
    cells=(
        Cell(("0301",), None, 3, Suppression.PRIMARY),
        Cell(("1103",), None, 9, Suppression.COMPLEMENTARY),
        Cell(("4601",), Decimal(42), 888),
        Cell((TOTAL,), Decimal(60), 900),
    ),
    legend=("Prikket (:): færre enn 5 personer.",),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway")
    stats_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def _main(argv: Sequence[str]) -> int | None:
    return stats_cli.run(_parser().parse_args(argv))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    text = (PROJECT / "config" / "local.toml").read_text(encoding="utf-8")
    path = tmp_path / "local.toml"
    path.write_text(text.replace("../var/", "var/"), encoding="utf-8")
    Store(tmp_path / "var" / "gateway.sqlite3").close()
    return path


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace ``gateway.stats.build`` with a module whose ``build_table`` records its calls."""
    calls: list[dict[str, Any]] = []

    def build_table(
        db: Engine,
        *,
        measure: str,
        by: Sequence[str],
        period: str,
        progress: Callable[[str], None] | None = None,
        **options: Any,
    ) -> Table:
        where = getattr(db, "path", db)  # the SQLite engine's file
        calls.append(
            {"db": where, "measure": measure, "by": tuple(by), "period": period, **options}
        )
        if period == "1999":
            raise StatsError("no bills in period 1999")
        if progress is not None:
            progress("spørring")
        return TABLE

    module = types.ModuleType("gateway.stats.build")
    module.build_table = build_table  # type: ignore[attr-defined]
    module.StatsError = StatsError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gateway.stats.build", module)
    return calls


def test_other_commands_are_not_ours() -> None:
    assert stats_cli.run(argparse.Namespace(command="status")) is None


def test_a_missing_database_is_an_error_not_a_new_file(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "var" / "gateway.sqlite3"
    database.unlink()
    out = tmp_path / "out.csv"
    argv = ["stats", "export", "--measure", "kontakter", "--by", "kommune", "--period", "2023"]
    assert _main([*argv, "--out", str(out), "--config", str(config)]) == 1
    assert "no database" in capsys.readouterr().err
    assert not database.exists()


@pytest.mark.parametrize("fmt", ["csv", "json", "xml", "xlsx"])
def test_export_writes_the_table_and_reports_progress(
    tmp_path: Path,
    config: Path,
    fake_build: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    fmt: str,
) -> None:
    out = tmp_path / f"kontakter.{fmt}"
    argv = ["stats", "export", "--measure", "kontakter", "--by", "kommune", "--period", "2023"]
    assert _main([*argv, "--format", fmt, "--out", str(out), "--config", str(config)]) == 0
    assert fake_build == [
        {
            "db": tmp_path / "var" / "gateway.sqlite3",
            "measure": "kontakter",
            "by": ("kommune",),
            "period": "2023",
            "only": {},
            "share_of": None,
            "exclusion": None,
            "mirror": tmp_path / "var" / "gateway.sqlite3.stats",  # beside the SQLite file
        }
    ]
    back = read_table(out, fmt)
    assert [c.value for c in back.cells] == [c.value for c in TABLE.cells]
    captured = capsys.readouterr()
    assert "spørring" in captured.err and "ferdig" in captured.err
    assert f"wrote {out}" in captured.out
    assert not list(tmp_path.glob("*.partial"))


def test_export_format_from_suffix_png_and_quiet(
    tmp_path: Path,
    config: Path,
    fake_build: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "chart.png"
    argv = ["stats", "export", "--measure", "kontakter", "--by", "kommune,kjonn"]
    assert (
        _main([*argv, "--period", "2023", "--out", str(out), "--config", str(config), "--quiet"])
        == 0
    )
    assert out.read_bytes().startswith(b"\x89PNG")
    assert fake_build[0]["by"] == ("kommune", "kjonn")
    assert capsys.readouterr().err == ""


def test_export_errors_exit_1_with_the_message(
    tmp_path: Path,
    config: Path,
    fake_build: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["stats", "export", "--measure", "takster", "--by", "kommune", "--config", str(config)]
    assert _main([*base, "--period", "1999", "--out", str(tmp_path / "x.csv")]) == 1
    assert "no bills in period 1999" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()

    assert _main([*base, "--period", "2023", "--out", str(tmp_path / "x.txt")]) == 1
    assert "--format" in capsys.readouterr().err

    assert _main([*base, "--period", "2023", "--out", str(tmp_path / "no" / "x.csv")]) == 1
    assert "no such directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("by", "message"),
    [
        ("kommune,postnummer", "unknown dimension postnummer"),
        ("kommune,fylke", "one area level"),
        ("kjonn,kjonn", "twice"),
        (",", "at least one"),
    ],
)
def test_bad_dimensions_are_refused_by_argparse(
    by: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(["stats", "export", "--measure", "takster", "--by", by,
                              "--period", "2023", "--out", "x.csv"])  # fmt: skip
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_measure_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["stats", "export", "--measure", "penger", "--by", "kommune",
                              "--period", "2023", "--out", "x.csv"])  # fmt: skip
    assert "invalid choice" in capsys.readouterr().err


def test_import_commands(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "var").mkdir(exist_ok=True)
    Store(tmp_path / "var" / "gateway.sqlite3").close()
    residence = tmp_path / "bosted.csv"
    residence.write_text("patient_id,kommune\n12345678901,0301\n", encoding="utf-8")
    assert _main(["stats", "import-residence", str(residence), "--config", str(config)]) == 0
    assert "1 residence rows imported" in capsys.readouterr().out

    population = tmp_path / "folketall.csv"
    population.write_text(
        "year,kommune,aldersgruppe,kjonn,count\n2023,0301,30-49,K,1200\n", encoding="utf-8"
    )
    assert _main(["stats", "import-population", str(population), "--config", str(config)]) == 0
    assert "1 population rows imported" in capsys.readouterr().out

    population.write_text("year,kommune\n2023,0301\n", encoding="utf-8")
    assert _main(["stats", "import-population", str(population), "--config", str(config)]) == 1
    assert "folketall.csv" in capsys.readouterr().err

    missing = tmp_path / "nope.csv"
    assert _main(["stats", "import-residence", str(missing), "--config", str(config)]) == 1
    assert "no such file" in capsys.readouterr().err


def test_export_with_the_real_core(
    tmp_path: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small synthetic store (the bench's generator), the real ``build_table``, every format."""
    monkeypatch.syspath_prepend(str(PROJECT))  # bench/ is not an installed package
    from bench.stats_data import fill

    (tmp_path / "var").mkdir(exist_ok=True)
    database = tmp_path / "var" / "gateway.sqlite3"
    fill(database, 3_000)  # with residence, population and the practice register
    for fmt in ("csv", "json", "xml", "xlsx", "png"):
        out = tmp_path / f"export.{fmt}"
        argv = ["stats", "export", "--measure", "refusjon", "--by", "praksistype,kommune"]
        assert _main([*argv, "--period", "2023", "--out", str(out), "--config", str(config)]) == 0
        if fmt != "png":
            table = read_table(out, fmt)
            assert table.measure == "refusjon" and table.period == "2023"
            assert table.per_1000 is not None
            assert any(c.value is None for c in table.cells)  # small kommuner are suppressed
            assert (TOTAL, TOTAL) in {c.key for c in table.cells}
    err = capsys.readouterr().err
    assert "prikker små celler" in err and "ferdig" in err
