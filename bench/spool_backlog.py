"""CPU per message with a backlog: does taking a file stay O(1) when 20,000 wait?

    python -m bench.spool_backlog [--measured N] [--waiting W] [--keep DIR]

Twice, on a fresh site, the real daemon parts (``gateway.wiring.build``: spool inbox with its
inotify watch, intake, pipeline, file outbox) take the same ``N`` claim messages:

1. *empty queue*: only those ``N`` files are in ``incoming/``;
2. *backlog*: the same ``N`` files, oldest, with ``W`` more files waiting behind them.

Each run stops after ``N`` messages; the process's CPU time (user + system, all threads) and
the wall time over those ``N`` are divided by ``N``. The daemon processes the messages in one
thread of its own here (``[daemon] workers = 0``), so that its CPU time is all there is to
count. The backlog figure must stay within 10%
of the empty-queue one (issue 13); before the spool kept a readiness queue, the spool rescanned
``incoming/`` every 10 files and a 20,000-file backlog cost 25 ms of CPU per message more.
Prints a table, then one ``BENCH_JSON {...}`` line; exits 1 if the bound is missed.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import parser_for, past_claim, print_bench_json, row, say, work_directory
from bench.spool_site import OUR_HER
from gateway.clock import local_naive, utc_now
from gateway.config import Config
from gateway.logs import configure_logging
from gateway.receipts.keys import generate_dev_credentials
from gateway.records import Outcome
from gateway.testing.claims import default_receiver, default_sender, msghead_with_bkm
from gateway.testing.messages import Route, ebxml_message
from gateway.transports import Intake
from gateway.wiring import build

#: The backlog may cost this much more CPU per message than the empty queue.
BOUND = 1.10


@dataclass(frozen=True, slots=True)
class Figure:
    cpu_ms: float
    wall_ms: float


def claims(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    sender = default_sender("8141253")
    today = local_naive(utc_now()).date()
    out = []
    for _ in range(count):
        head, krav = past_claim(
            rng, today=today, bills=3, sender=sender, receiver=default_receiver(OUR_HER)
        )
        out.append(
            ebxml_message(msghead_with_bkm(head, krav), route=Route(to_her=OUR_HER), rng=rng)
        )
    return out


def make_config(root: Path) -> Config:
    data: dict[str, Any] = {
        "identity": {
            "name": "HELFO (benchmark)",
            "her_id": OUR_HER,
            "enh_id": "889640782",
            "mail_address": "gateway@kuhr.bench",
        },
        "database": {"path": "gateway.sqlite3"},
        "spool": {"directory": "spool", "settle_seconds": 0, "poll_interval": 0.1},
        "outbox": {"kind": "file", "directory": "outbox"},
        "signing": {"key_file": "keys/signing-key.pem", "cert_file": "keys/signing-cert.pem"},
        "logging": {"level": "warning", "format": "json"},
        "daemon": {"workers": 0},
    }
    # The path is never read: from_mapping only resolves relative paths against its directory.
    return Config.from_mapping(data, root / "bench.toml")


class _Counting:
    """The daemon's intake, stopping the run after ``count`` messages."""

    def __init__(self, intake: Intake, count: int, stop: asyncio.Event) -> None:
        self.intake, self.count, self.stop = intake, count, stop
        self.capacity = intake.capacity
        self.done = 0
        self.cpu_started = self.wall_started = 0.0
        #: CPU and wall time from the first message to the ``count``-th (those still in hand
        #: then, up to the intake's capacity, are finished after it and not counted).
        self.cpu = self.wall = 0.0

    async def __call__(
        self, raw: bytes, *, source: str, source_ref: str, source_name: str
    ) -> Outcome:
        if self.done == 0 and not self.wall_started:
            # From the first message on: the start-up scan counts, the build not.
            self.cpu_started, self.wall_started = time.process_time(), time.perf_counter()
        outcome = await self.intake(
            raw, source=source, source_ref=source_ref, source_name=source_name
        )
        self.done += 1
        if self.done == self.count:
            self.cpu = time.process_time() - self.cpu_started
            self.wall = time.perf_counter() - self.wall_started
            self.stop.set()
        return outcome


def measure(root: Path, measured: list[bytes], waiting: int) -> Figure:
    root.mkdir()
    config = make_config(root)
    generate_dev_credentials(
        config.signing.key_file, config.signing.cert_file, common_name="bench", organisation="bench"
    )
    incoming = config.spool.incoming
    incoming.mkdir(parents=True)
    old = time.time() - 3600  # the measured files are the oldest: taken first
    for i, raw in enumerate(measured):
        path = incoming / f"measured-{i:05d}.msg"
        path.write_bytes(raw)
        os.utime(path, (old + i, old + i))
    filler = measured[0]
    for i in range(waiting):
        (incoming / f"waiting-{i:06d}.msg").write_bytes(filler)
    return asyncio.run(_run(config, len(measured)))


async def _run(config: Config, count: int) -> Figure:
    parts = build(config, once=False)
    stop = asyncio.Event()
    counting = _Counting(parts.spool.intake, count, stop)
    parts.spool.intake = counting
    try:
        await parts.spool.run(stop)
    finally:
        parts.close()
    return Figure(counting.cpu / count * 1000, counting.wall / count * 1000)


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__name__, __doc__)
    parser.add_argument("--measured", type=int, default=300)
    parser.add_argument("--waiting", type=int, default=20_000)
    parser.add_argument("--keep", help="keep the work directory here")
    args = parser.parse_args(argv)
    configure_logging("warning", "json")
    measured = claims(args.measured, seed=20240917)
    with work_directory(args.keep, "gateway-spool-backlog-") as root:
        empty = measure(root / "empty", measured, 0)
        backlog = measure(root / "backlog", measured, args.waiting)
    ratio = backlog.cpu_ms / empty.cpu_ms
    say(f"spool backlog: {args.measured} messages, then with {args.waiting} files waiting")
    print(row("empty queue", f"{empty.cpu_ms:.2f} ms CPU/msg", f"{empty.wall_ms:.2f} ms wall/msg"))
    print(row("backlog", f"{backlog.cpu_ms:.2f} ms CPU/msg", f"{backlog.wall_ms:.2f} ms wall/msg"))
    print(row("backlog / empty (CPU)", f"{ratio:.3f}", f"bound {BOUND:.2f}"))
    print_bench_json(
        {
            "bench": "spool_backlog",
            "measured": args.measured,
            "waiting": args.waiting,
            "empty_cpu_ms_per_message": round(empty.cpu_ms, 3),
            "empty_wall_ms_per_message": round(empty.wall_ms, 3),
            "backlog_cpu_ms_per_message": round(backlog.cpu_ms, 3),
            "backlog_wall_ms_per_message": round(backlog.wall_ms, 3),
            "cpu_ratio": round(ratio, 3),
            "bound": BOUND,
        }
    )
    return 0 if ratio <= BOUND else 1


if __name__ == "__main__":
    sys.exit(main())
