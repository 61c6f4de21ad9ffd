"""Instances benchmark: messages per second of 1 and 2 gateway instances on PostgreSQL, beside
one on SQLite.

    python -m bench.instances_bench [--messages N] [--bills B] [--seed X] [--keep DIR]

``BENCH_INSTANCE_MESSAGES`` sets the default of ``--messages`` (600).

1. Generates N claim messages once (valid, distinct; as ``bench.spool_site`` makes them).
2. Starts a PostgreSQL server of its own (``tests.support.postgres``) in a temporary directory,
   with its durable defaults (``fsync``, ``synchronous_commit`` on): what a production server
   does for each commit.
3. Three runs, each on a new database, each with the real daemon process(es) (``python -m
   gateway run``, file outbox, logging at ``warning``), started and ready before the files are
   dropped:

   - **SQLite, 1 instance**: the embedded default;
   - **PostgreSQL, 1 instance**;
   - **PostgreSQL, 2 instances**: each with a spool directory of its own, half the files each,
     one database (the instances share the store, its unique keys and its outbox).

   A run's time is from the first file dropped to the moment every message has its AppRec
   delivered (read in the database); messages per second is N over that. The daemons' CPU
   (user + system, ``/proc``) is reported per message, and for PostgreSQL the server's too.
4. Prints a table, then one ``BENCH_JSON {...}`` line with every number.

A measurement, not a test: nothing fails for being slow. It exits 1 when a message is not
answered; without PostgreSQL server binaries it prints why and exits 0 (1 in CI).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    add_seed_and_keep,
    cpu_seconds,
    parser_for,
    past_claim,
    print_bench_json,
    row,
    say,
    work_directory,
)
from bench.spool_site import FIRST_SENDER_HER, OUR_HER, SENDER_COUNT
from gateway.clock import local_naive, utc_now
from gateway.receipts.keys import generate_dev_credentials
from gateway.store import Database, Store
from gateway.testing.claims import default_receiver, default_sender, msghead_with_bkm
from gateway.testing.messages import Route, ebxml_message
from tests.support.postgres import MISSING_REASON, PostgresServer, find_bin

DEFAULT_MESSAGES = 600
DEFAULT_BILLS = 3
DEFAULT_SEED = 20261125
STARTUP_TIMEOUT = 60.0
RUN_TIMEOUT = 900.0

CONFIG = """
[identity]
name = "HELFO (instances benchmark)"
her_id = "79768"
enh_id = "889640782"
mail_address = "gateway@kuhr.bench"

[database]
{database}

[spool]
directory = "spool"
settle_seconds = 0
poll_interval = 0.1

[outbox]
kind = "file"
directory = "outbox"

[signing]
key_file = "{keys}/signing-key.pem"
cert_file = "{keys}/signing-cert.pem"

[logging]
level = "warning"
format = "json"
"""


@dataclass(frozen=True, slots=True)
class Run:
    """One configuration's result."""

    label: str
    engine: str
    instances: int
    messages: int
    seconds: float
    daemon_cpu: float
    server_cpu: float | None

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds

    def as_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "instances": self.instances,
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
            "messages_per_second": round(self.per_second, 2),
            "daemon_cpu_ms_per_message": round(1000 * self.daemon_cpu / self.messages, 2),
            "server_cpu_ms_per_message": None
            if self.server_cpu is None
            else round(1000 * self.server_cpu / self.messages, 2),
        }


def _instance(root: Path, database: str, keys: Path) -> Path:
    root.mkdir(parents=True)
    (root / "gateway.toml").write_text(
        CONFIG.format(database=database, keys=keys), encoding="utf-8"
    )
    return root


def _start(site: Path) -> subprocess.Popen[bytes]:
    with (site / "daemon.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", "gateway.toml"],
            cwd=site,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def _answered(store: Store) -> int:
    found = store.engine.one(
        "SELECT COUNT(*) FROM replies WHERE kind = 'apprec' AND state = 'delivered'"
    )
    return 0 if found is None else int(found[0])


def _server_cpu(server: PostgresServer | None) -> float:
    """CPU seconds of every process of the PostgreSQL server so far (its backends included)."""
    if server is None:
        return 0.0
    total = 0.0
    pid_file = server.data / "postmaster.pid"
    postmaster = int(pid_file.read_text().split("\n", 1)[0])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if int(entry.name) == postmaster or parent == postmaster:
            total += cpu_seconds(int(entry.name))
    return total


def run_one(
    label: str,
    root: Path,
    database: Database,
    instances: int,
    source: Path,
    keys: Path,
    server: PostgresServer | None,
) -> Run:
    """Start ``instances`` daemons on ``database``, drop the files, wait for every AppRec."""
    files = sorted(source.iterdir())
    store = Store(database)  # makes the schema before the daemons start
    table = _database_table(database)
    sites = [_instance(root / f"instance{n}", table, keys) for n in range(instances)]
    daemons = [_start(site) for site in sites]
    try:
        for site in sites:
            (site / "spool" / "incoming").mkdir(parents=True, exist_ok=True)
        _wait_started(sites, daemons)
        before = sum(cpu_seconds(d.pid) for d in daemons)
        server_before = _server_cpu(server)
        started = time.perf_counter()
        for n, path in enumerate(files):  # round the instances; rename: a file appears whole
            incoming = sites[n % instances] / "spool" / "incoming"
            shutil.copyfile(path, incoming / f".{path.name}.tmp")
            os.rename(incoming / f".{path.name}.tmp", incoming / path.name)
        deadline = time.monotonic() + RUN_TIMEOUT
        while _answered(store) < len(files):
            if time.monotonic() > deadline or any(d.poll() is not None for d in daemons):
                raise SystemExit(f"{label}: {_answered(store)} of {len(files)} answered")
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        cpu = sum(cpu_seconds(d.pid) for d in daemons) - before
        server_cpu = _server_cpu(server) - server_before if server is not None else None
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            daemon.wait(60)
        store.close()
    engine = "postgresql" if database.url else "sqlite"
    return Run(label, engine, instances, len(files), seconds, cpu, server_cpu)


def _database_table(database: Database) -> str:
    """The ``[database]`` table's body for ``database``."""
    if database.url is not None:
        return f'url = "{database.url}"'
    return f'path = "{database.path}"'


def _wait_started(sites: Sequence[Path], daemons: Sequence[subprocess.Popen[bytes]]) -> None:
    """Until every daemon has made its spool directories (it is taking files then)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not all((site / "spool" / "work").is_dir() for site in sites):
        if time.monotonic() > deadline or any(d.poll() is not None for d in daemons):
            raise SystemExit("a daemon did not start: see daemon.log in --keep DIR")
        time.sleep(0.05)
    time.sleep(1.0)  # past its start: recovery, tariffs, outbox


def _generate(directory: Path, *, messages: int, bills: int, seed: int) -> None:
    """``messages`` distinct, valid claim messages of a few senders into ``directory``."""
    rng = random.Random(seed)
    receiver = default_receiver(OUR_HER)
    senders = [
        default_sender(str(FIRST_SENDER_HER + k), name=f"Benkeklinikk {k} AS")
        for k in range(SENDER_COUNT)
    ]
    today = local_naive(utc_now()).date()
    for i in range(messages):
        sender = rng.choice(senders)
        head, krav = past_claim(rng, today=today, bills=bills, sender=sender, receiver=receiver)
        raw = ebxml_message(
            msghead_with_bkm(head, krav),
            route=Route(from_her=sender.her_id or "", to_her=OUR_HER),
            rng=rng,
        )
        (directory / f"claim-{i:06d}.msg").write_bytes(raw)


def run(args: argparse.Namespace) -> int:
    if find_bin() is None:
        say(f"instances bench skipped: {MISSING_REASON}")
        return 1 if os.environ.get("CI") else 0
    with work_directory(args.keep, "gateway-instances-bench-") as root:
        source = root / "claims"
        source.mkdir()
        say(f"generating {args.messages} claims of {args.bills} bills ...")
        _generate(source, messages=args.messages, bills=args.bills, seed=args.seed)
        keys = root / "keys"
        keys.mkdir()
        generate_dev_credentials(
            keys / "signing-key.pem", keys / "signing-cert.pem",
            common_name="HELFO (benchmark)", organisation="HELFO (benchmark)",
        )  # fmt: skip
        runs = [
            run_one("SQLite, 1 instance", root / "sqlite", Database(path=root / "gw.sqlite3"), 1,
                    source, keys, None),
        ]  # fmt: skip
        # In a directory of its own: its user (postgres, under root) must be able to enter it.
        server = PostgresServer(durable=True).start()
        try:
            for instances in (1, 2):
                url = server.create_database(f"gateway{instances}")
                label = f"PostgreSQL, {instances} instance{'s' if instances > 1 else ''}"
                say(f"{label} ...")
                runs.append(
                    run_one(label, root / f"pg{instances}", Database(url=url), instances,
                            source, keys, server)
                )  # fmt: skip
        finally:
            server.close()
    print_table(runs)
    print_bench_json(
        {
            "bench": "instances",
            "messages": args.messages,
            "bills": args.bills,
            "runs": {r.label: r.as_json() for r in runs},
            "postgresql_2_over_1": round(runs[2].per_second / runs[1].per_second, 2),
        }
    )
    return 0


def print_table(runs: Sequence[Run]) -> None:
    print()
    print("Instances benchmark (spool in, file outbox out; AppRec delivered, read in the database)")
    for r in runs:
        server = (
            "" if r.server_cpu is None else f", server {1000 * r.server_cpu / r.messages:.1f} ms"
        )
        print(
            row(
                r.label,
                f"{r.per_second:7.1f} msg/s",
                f"{r.messages} in {r.seconds:.1f} s; CPU/msg: daemons "
                f"{1000 * r.daemon_cpu / r.messages:.1f} ms{server}",
            )
        )
    print(row("PostgreSQL 2 / 1 instances", f"{runs[2].per_second / runs[1].per_second:7.2f} x"))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = parser_for("bench.instances_bench", __doc__)
    parser.add_argument(
        "--messages",
        type=int,
        default=int(os.environ.get("BENCH_INSTANCE_MESSAGES", DEFAULT_MESSAGES)),
    )
    parser.add_argument("--bills", type=int, default=DEFAULT_BILLS)
    add_seed_and_keep(parser, seed=DEFAULT_SEED, kept="the databases, spools and logs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
