"""How long the published statistics take over a large claims store.

    python -m bench.stats_bench [--bills N] [--keep DIR]

Creates a claims store with N synthetic bills of 2023 (default 10,000,000; generated inside
SQLite by ``bench.stats_data``), then measures, each as CPU seconds (this process) and wall
seconds:

- the first build of the statistics mirror (``gateway.stats.mirror``, once per store);
- an incremental sync after 1,000 new bills and 100 overrides;
- every published table (``gateway.stats.published``) for the year, and a 4-dimension table
  (praksistype, kommune, aldersgruppe, kjonn), each through ``build_table`` (sync check, cube,
  suppression, shares and per-inhabitant figures), and writing the first as every format.

It prints one ``BENCH_JSON {...}`` line. With ``--keep DIR`` the store is built there once and
reused by later runs (delete it to start over). A measurement, not a test: nothing fails because
something is slow; the target is under 10 s per table over 10,000,000 bills.
"""

from __future__ import annotations

import argparse
import functools
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import TypeVar

from bench.stats_data import fill
from gateway.stats.build import build_table
from gateway.stats.formats import FORMATS, write_table
from gateway.stats.mirror import mirror_directory, sync
from gateway.stats.published import PUBLISHED
from gateway.stats.query import ensure_indexes
from gateway.store import Database, Store

T = TypeVar("T")


def say(text: str) -> None:
    print(text, flush=True)


def timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """(result, CPU seconds, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return result, round(time.process_time() - cpu, 2), round(time.perf_counter() - wall, 2)


def _more_work(db_path: Path) -> None:
    """1,000 new bills (copies of the last ones) and 100 overrides, for the incremental sync."""
    with closing(sqlite3.connect(db_path)) as db:
        (last,) = db.execute("SELECT MAX(id) FROM bills").fetchone()
        db.execute(
            "INSERT INTO bills(id, message_id, position, sender_her, practitioner_id, guid, "
            "regning_nr, dato_tid, kreditering, betalt_egenandel, patient_id, patient_id_type, "
            "sum_refusjon_ore, status, approved_ore, live, patient_birth_date, patient_sex, "
            "practitioner_type) SELECT id + 1000, message_id, position + 100, sender_her, "
            "practitioner_id, guid || '-x', regning_nr, dato_tid, 0, 1, patient_id, "
            "patient_id_type, sum_refusjon_ore, status, approved_ore, 0, patient_birth_date, "
            "patient_sex, practitioner_type FROM bills WHERE id > ?",
            (last - 1000,),
        )
        db.execute(
            'INSERT INTO overrides(bill_id, decision, amount_ore, reason, "by", "at", '
            "previous_status, previous_ore) SELECT id, 'avvist', 0, 'bench', 'bench', "
            "'2024-01-01T00:00:00Z', status, approved_ore FROM bills WHERE id % 9973 = 0 "
            "LIMIT 100"
        )
        db.commit()


def run(bills: int, keep: Path | None) -> dict[str, object]:
    results: dict[str, object] = {"bench": "stats", "bills": bills}
    with tempfile.TemporaryDirectory(prefix="stats-bench-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db_path = work / f"gateway-{bills}.sqlite3"
        if not db_path.exists():
            say(f"filling a store with {bills:,} bills ...")
            partial = db_path.with_name(db_path.name + ".partial")
            partial.unlink(missing_ok=True)
            _, cpu, wall = timed(lambda: fill(partial, bills))
            partial.replace(db_path)
            results["fill"] = {"cpu": cpu, "wall": wall}
            say(f"  {cpu} s CPU, {wall} s wall")
        store = Store(db_path)
        db = store.engine
        mirror = mirror_directory(Database(path=db_path))
        assert mirror is not None  # a SQLite file has its mirror beside it
        ensure_indexes(db)
        _, cpu, wall = timed(lambda: sync(db, mirror))
        results["mirror_first_build"] = {"cpu": cpu, "wall": wall}
        say(f"statistics mirror (first build, or up to date): {cpu} s CPU, {wall} s wall")
        _more_work(db_path)
        _, cpu, wall = timed(lambda: sync(db, mirror))
        results["mirror_incremental"] = {"cpu": cpu, "wall": wall}
        say(f"incremental sync (1,000 bills, 100 overrides): {cpu} s CPU, {wall} s wall")
        tables: list[dict[str, object]] = []
        requests = [(p.name, p.measure, p.by, p.only, p.share_of) for p in PUBLISHED.values()]
        requests.append(
            (
                "4 dimensjoner",
                "refusjon",
                ("praksistype", "kommune", "aldersgruppe", "kjonn"),
                {},
                None,
            )
        )
        for number, (name, measure, by, only, share_of) in enumerate(requests):
            table, cpu, wall = timed(
                functools.partial(
                    build_table,
                    db,
                    mirror=mirror,
                    measure=measure,
                    by=by,
                    period="2023",
                    only=only,
                    share_of=share_of,
                )
            )
            suppressed = sum(1 for c in table.cells if c.value is None)
            say(
                f"{name:<24} {cpu:7.2f} s CPU {wall:7.2f} s wall   {len(table.cells):>6} cells, "
                f"{suppressed} suppressed"
            )
            entry: dict[str, object] = {
                "table": name,
                "cpu": cpu,
                "wall": wall,
                "cells": len(table.cells),
                "suppressed": suppressed,
            }
            if number == 0:
                writes: dict[str, float] = {}
                for fmt in FORMATS:
                    _, _, writes[fmt] = timed(
                        functools.partial(write_table, table, work / f"export.{fmt}", fmt)
                    )
                entry["write_wall"] = writes
                say(f"  write {writes}")
            tables.append(entry)
        store.close()
        results["tables"] = tables
        results["slowest_table_wall"] = max(float(str(t["wall"])) for t in tables)
        results["slowest_table_cpu"] = max(float(str(t["cpu"])) for t in tables)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats_bench", description=__doc__)
    parser.add_argument("--bills", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, help="build the store in this directory and keep it")
    args = parser.parse_args(argv)
    if args.bills < 1000:
        parser.error("--bills must be at least 1000")
    results = run(args.bills, args.keep)
    print("BENCH_JSON " + json.dumps(results, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
