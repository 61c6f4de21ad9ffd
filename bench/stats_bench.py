"""How long ``gateway stats export`` takes on a large claims store.

    python -m bench.stats_bench [--bills N] [--seed S] [--keep DIR]

Creates a claims store in a temporary directory and fills it directly (``executemany`` in
batches, not through the pipeline) with N synthetic bills of 2023 (default 1,000,000) and their
lines: patients spread over kommuner of very different sizes (Oslo to the smallest, so some cells
are suppressed), all ages and both sexes, and the practitioner types in realistic proportions.
Then it imports a residence table and a population table through ``gateway.stats.reference``,
times ``build_table`` for three typical exports and the writing of every format, and prints one
``BENCH_JSON {...}`` line. The patient ids are synthetic 11-digit numbers, not real national ids.

A measurement, not a test: nothing fails because something is slow.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

from gateway.stats.build import build_table
from gateway.stats.formats import FORMATS, write_table
from gateway.stats.model import Table
from gateway.stats.reference import AGE_GROUP_BOUNDS, import_population, import_residence
from gateway.store import Store

#: (kommunenummer, relative size): the biggest, some middle and the smallest municipalities.
KOMMUNER: tuple[tuple[str, int], ...] = (
    ("0301", 700),  # Oslo
    ("4601", 290),  # Bergen
    ("5001", 210),  # Trondheim
    ("1103", 145),  # Stavanger
    ("3205", 100),  # Lillestrøm
    ("4204", 115),  # Kristiansand
    ("3107", 60),  # Fredrikstad
    ("5501", 78),  # Tromsø
    ("3301", 60),  # Drammen
    ("1506", 66),  # Molde
    ("3403", 34),  # Hamar
    ("1804", 53),  # Bodø
    ("3907", 59),  # Sandefjord
    ("4203", 45),  # Arendal
    ("1106", 37),  # Haugesund
    ("3413", 14),  # Stange
    ("4621", 19),  # Voss
    ("1820", 8),  # Alstahaug
    ("5426", 4),  # Kåfjord
    ("3433", 2),  # Lom
    ("1825", 1),  # Grane
    ("4632", 1),  # Austrheim
    ("1151", 1),  # Utsira (the smallest)
    ("5441", 1),  # Tana
    ("1839", 1),  # Beiarn
)
#: Practitioner types in rough proportion of KUHR's bill volume.
PRACTITIONERS: tuple[tuple[str, int], ...] = (
    ("lege", 55),
    ("lab", 15),
    ("fysioterapeut", 10),
    ("tannlege", 6),
    ("psykolog", 5),
    ("kiropraktor", 4),
    ("tannpleier", 2),
    ("logoped", 1),
    ("kjeveortoped", 1),
    ("medisinsk_genetikk", 1),
)
TAKST_CODES = ("2ad", "2ak", "2cd", "11ad", "701a", "705b", "A1", "C21")
BATCH = 50_000
BILLS_PER_MESSAGE = 100
#: (measure, by, period): the exports timed.
EXPORTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("refusjon", ("praksistype", "kommune"), "2023"),
    ("kontakter", ("kommune", "aldersgruppe", "kjonn"), "2023-T1"),
    ("takster", ("fagomrade", "fylke"), "2023-05"),
)

_BILL_COLUMNS = (
    "id, message_id, position, sender_her, practitioner_id, guid, regning_nr, dato_tid, "
    "kreditering, betalt_egenandel, kode_egenandel, patient_id, patient_id_type, "
    "sum_refusjon_ore, status, approved_ore, credited_by, live, manual, "
    "patient_birth_date, patient_sex, practitioner_type"
)
_EXTRA_COLUMNS = ("patient_birth_date", "patient_sex", "practitioner_type")


def say(text: str) -> None:
    print(text, flush=True)


def _ensure_stats_columns(db: sqlite3.Connection) -> list[str]:
    """Add the columns the statistics read when this store's schema does not have them yet."""
    have = {row[1] for row in db.execute("PRAGMA table_info(bills)")}
    added = [c for c in _EXTRA_COLUMNS if c not in have]
    for column in added:
        db.execute(f"ALTER TABLE bills ADD COLUMN {column} TEXT")
    return added


class Patients:
    """A synthetic patient population: id, birth date, sex, kommune (None: no residence)."""

    def __init__(self, count: int, rng: random.Random) -> None:
        kommuner = [k for k, _ in KOMMUNER]
        weights = [w for _, w in KOMMUNER]
        self.ids = [f"{10_000_000_000 + i * 7919 % 89_999_999_999:011d}" for i in range(count)]
        start = date(1925, 1, 1).toordinal()
        span = date(2022, 12, 31).toordinal() - start
        self.birth = [
            date.fromordinal(start + int(span * rng.random() ** 0.8)).isoformat()
            for _ in range(count)
        ]
        self.sex = rng.choices(("K", "M"), k=count)
        self.kommune: list[str | None] = list(rng.choices(kommuner, weights, k=count))
        for i in rng.sample(range(count), count // 50):  # 2 % without a known residence
            self.kommune[i] = None


def _bills(
    first_id: int, count: int, patients: Patients, rng: random.Random
) -> Iterator[tuple[object, ...]]:
    types = [t for t, _ in PRACTITIONERS]
    weights = [w for _, w in PRACTITIONERS]
    chosen_types = rng.choices(types, weights, k=count)
    r = rng.random
    n_patients = len(patients.ids)
    days = [(date(2023, 1, 1) + timedelta(days=d)).isoformat() for d in range(365)]
    for n in range(count):
        bill_id = first_id + n
        p = int(r() * n_patients)
        moment = f"{days[int(r() * 365)]}T{8 + int(r() * 9):02d}:{int(r() * 60):02d}:00"
        ore = 150 + int(r() * 250_000)
        approved = r() > 0.03
        yield (
            bill_id,
            (bill_id - 1) // BILLS_PER_MESSAGE + 1,
            (bill_id - 1) % BILLS_PER_MESSAGE,
            "8141253",
            f"9{bill_id % 50_000:07d}",
            f"g-{bill_id}",
            str(bill_id),
            moment,
            0,
            1,
            None,
            patients.ids[p],
            "FNR",
            ore,
            "godkjent" if approved else "avvist",
            ore if approved else 0,
            None,
            1 if approved else 0,
            0,
            patients.birth[p],
            patients.sex[p],
            chosen_types[n],
        )


def populate(db_path: Path, bills: int, seed: int) -> tuple[Patients, list[str]]:
    """Fill a fresh store at ``db_path`` with ``bills`` synthetic bills; returns the patients
    and the columns added because the schema lacked them."""
    Store(db_path).close()  # the real schema
    rng = random.Random(seed)
    patients = Patients(max(100, bills // 5), rng)
    with closing(sqlite3.connect(db_path)) as db:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -262144")  # 256 MiB
        added = _ensure_stats_columns(db)
        # Load without the secondary indexes on random keys (patient, guid) and build them
        # afterwards, as a bulk load would: the same schema at the end, several times faster.
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('bills', 'bill_lines')"
        ).fetchall()
        for name, _sql in indexes:
            db.execute(f'DROP INDEX "{name}"')
        messages = (bills + BILLS_PER_MESSAGE - 1) // BILLS_PER_MESSAGE
        db.executemany(
            "INSERT INTO received(id, received_at, source, source_ref, sha256, size, raw, "
            "outcome) VALUES (?, '2023-12-31T00:00:00Z', 'spool', ?, '', 0, x'', 'accepted')",
            ((i, f"bench-{i}") for i in range(1, messages + 1)),
        )
        db.executemany(
            "INSERT INTO messages(id, received_id, sender_her, msg_id, apprec_status) "
            "VALUES (?, ?, '8141253', ?, 1)",
            ((i, i, f"m-{i}") for i in range(1, messages + 1)),
        )
        placeholders = ", ".join("?" * len(_BILL_COLUMNS.split(",")))
        line_id = 1
        for first in range(1, bills + 1, BATCH):
            count = min(BATCH, bills - first + 1)
            rows = list(_bills(first, count, patients, rng))
            db.executemany(
                f"INSERT INTO bills({_BILL_COLUMNS}) VALUES ({placeholders})",
                rows,
            )
            lines: list[tuple[object, ...]] = []
            for row in rows:
                bill_id = row[0]
                for position in range(1 + int(rng.random() * 3)):
                    code = TAKST_CODES[int(rng.random() * len(TAKST_CODES))]
                    lines.append(
                        (
                            line_id,
                            bill_id,
                            position,
                            "takst",
                            code,
                            None,
                            15_000,
                            1 + (rng.random() < 0.2),
                        )
                    )
                    line_id += 1
                lines.append((line_id, bill_id, 9, "diagnose", "R74", "ICPC-2", None, None))
                line_id += 1
            db.executemany(
                "INSERT INTO bill_lines(id, bill_id, position, kind, code, code_system, "
                "amount_ore, antall) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                lines,
            )
            db.commit()
        for _name, sql in indexes:
            db.execute(sql)
        db.commit()
    return patients, added


def write_reference(directory: Path, patients: Patients) -> tuple[Path, Path]:
    """A residence file (every patient with a kommune) and a population file for 2023."""
    residence = directory / "bosted.csv"
    with residence.open("w", encoding="utf-8") as out:
        out.write("patient_id,kommune\n")
        for pid, kommune in zip(patients.ids, patients.kommune, strict=True):
            if kommune is not None:
                out.write(f"{pid},{kommune}\n")
    population = directory / "folketall.csv"
    with population.open("w", encoding="utf-8") as out:
        out.write("year,kommune,aldersgruppe,kjonn,count\n")
        for kommune, size in KOMMUNER:
            for label, _low, _high in AGE_GROUP_BOUNDS:
                for sex in ("K", "M"):
                    out.write(f"2023,{kommune},{label},{sex},{size * 70}\n")
    return residence, population


def run(bills: int, seed: int, keep: Path | None) -> dict[str, object]:
    results: dict[str, object] = {"bench": "stats", "bills": bills}
    with tempfile.TemporaryDirectory(prefix="stats-bench-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db_path = work / "gateway.sqlite3"
        db_path.unlink(missing_ok=True)
        say(f"filling a store with {bills:,} bills ...")
        started = time.perf_counter()
        patients, added = populate(db_path, bills, seed)
        results["fill_seconds"] = round(time.perf_counter() - started, 2)
        results["patients"] = len(patients.ids)
        if added:
            say(f"  (schema lacks {', '.join(added)}: added them for the bench)")
            results["columns_added_by_bench"] = added
        say(f"  {results['fill_seconds']} s, {len(patients.ids):,} patients")

        residence, population = write_reference(work, patients)
        store = Store(db_path)
        started = time.perf_counter()
        residents = import_residence(store.engine, residence)
        import_population(store.engine, population)
        results["import_residence_seconds"] = round(time.perf_counter() - started, 2)
        say(f"imported {residents:,} residences: {results['import_residence_seconds']} s")

        exports: list[dict[str, object]] = []
        tables: list[Table] = []
        for number, (measure, by, period) in enumerate(EXPORTS):
            started = time.perf_counter()
            table = build_table(store.engine, measure=measure, by=by, period=period)
            seconds = time.perf_counter() - started
            tables.append(table)
            suppressed = sum(1 for c in table.cells if c.value is None)
            name = f"{measure} by {','.join(by)} {period}"
            say(
                f"build_table {name:<45} {seconds:7.2f} s   {len(table.cells):>6} cells, "
                f"{suppressed} suppressed"
            )
            entry: dict[str, object] = {
                "export": name,
                "build_seconds": round(seconds, 3),
                "cells": len(table.cells),
                "suppressed": suppressed,
            }
            if number == 0:
                write_seconds: dict[str, float] = {}
                for fmt in FORMATS:
                    started = time.perf_counter()
                    write_table(table, work / f"export.{fmt}", fmt)
                    write_seconds[fmt] = round(time.perf_counter() - started, 3)
                    say(f"  write {fmt:<5} {write_seconds[fmt]:7.3f} s")
                entry["write_seconds"] = write_seconds
            exports.append(entry)
        store.close()
        results["exports"] = exports
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats_bench", description=__doc__)
    parser.add_argument("--bills", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--keep", type=Path, help="build the store in this directory and keep it")
    args = parser.parse_args(argv)
    if args.bills < 1:
        parser.error("--bills must be at least 1")
    results = run(args.bills, args.seed, args.keep)
    print("BENCH_JSON " + json.dumps(results, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
