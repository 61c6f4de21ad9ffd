"""Spool benchmark: generated claims through the real daemon process, against a floor of primitives.

    python -m bench.spool_bench [--messages N] [--bills B] [--sample S] [--seed X]
                                [--latency-messages L] [--keep DIR]

``BENCH_MESSAGES`` / ``BENCH_BILLS`` set the defaults of ``--messages`` / ``--bills`` (2000, 5).

Every rule is active (tariffs imported, every sender's type known) and the daemon logs at
``info`` (``bench.spool_site``). In one run:

1. **Throughput**, with 1 worker process and with 2: N claims in the spool, ``gateway run
   --once`` as a process of its own. Reported: wall time and messages/s, and **CPU per message**
   (user + system of the daemon and its workers, as the daemon reports them when it stops, minus
   what the same daemon uses on an empty spool: start-up), the batches it committed, and the
   bytes it wrote to storage beside the bytes it keeps (the database and the reply files).
2. **The floor**, on a sample of the same messages in this process: the CPU the unavoidable work
   costs, from primitives only (``bench.spool_floor``); reported as floor / daemon CPU.
3. **Latency** with the shipped configuration (spool defaults, default workers): claims dropped
   at half the measured maximum rate; for each, landing in ``incoming/`` to its AppRec file
   appearing in the outbox.

Wall time on a shared machine swings; CPU time is the stable figure. This is a measurement, not
a test: nothing fails for being slow. It exits 1 if the daemon's output is wrong.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    add_seed_and_keep,
    dist,
    mean,
    ms,
    parser_for,
    print_bench_json,
    row,
    say,
    work_directory,
)
from bench.spool_floor import FloorInput, measure_floor
from bench.spool_runs import Observed, Run, database_size, observe, run_latency, run_once
from bench.spool_site import Claim, Site, claims, make_site
from gateway.adapters import load_config
from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.intake.settings import usable_cpus
from gateway.receipts.signing import reply_signing_of, required_signatures

DEFAULT_MESSAGES = 2000
DEFAULT_BILLS = 5
DEFAULT_SAMPLE = 300
DEFAULT_SEED = 20240917
DEFAULT_LATENCY_MESSAGES = 600
WORKER_COUNTS = (1, 2)


def throughput(root: Path, workers: int, batch: list[Claim]) -> tuple[Site, dict[str, Any]]:
    """One site, ``workers`` worker processes: an empty run (start-up), then the full spool."""
    site = make_site(root / f"workers-{workers}", workers=workers)
    site.incoming.mkdir(parents=True, exist_ok=True)
    empty = run_once(site, root / f"workers-{workers}-empty.log")
    for claim in batch:
        (site.incoming / claim.name).write_bytes(claim.raw)
    # Written back now: else the daemon's first syncs would pay for the whole spool.
    os.sync()
    before = database_size(site)
    say(f"  {workers} worker(s): running the daemon on {len(batch)} messages ...")
    run = run_once(site, root / f"workers-{workers}.log")
    seen = observe(site, len(batch), before)
    say(f"  {workers} worker(s): {run.seconds:.1f} s")
    return site, _numbers(site, workers, len(batch), empty, run, seen)


def _numbers(
    site: Site, workers: int, n: int, empty: Run, run: Run, seen: Observed
) -> dict[str, Any]:
    usage, start = run.usage, empty.usage
    written = None
    if usage.bytes_written is not None and start.bytes_written is not None:
        written = (usage.bytes_written - start.bytes_written) / n
    stored = seen.stored_bytes / n
    return {
        "workers": workers,
        "site": str(site.root),
        "seconds": run.seconds,
        "startup_seconds": empty.seconds,
        "messages_per_second": n / run.seconds,
        "messages_per_second_after_startup": n / max(1e-9, run.seconds - empty.seconds),
        "cpu_ms_per_message": ms((usage.cpu - start.cpu) / n),
        "cpu_ms_per_message_daemon": ms((usage.daemon_cpu - start.daemon_cpu) / n),
        "cpu_ms_per_message_writer": ms((usage.writer_cpu - start.writer_cpu) / n),
        "cpu_ms_per_message_workers": ms((usage.workers_cpu - start.workers_cpu) / n),
        "cpu_ms_per_message_with_startup": ms(usage.cpu / n),
        "startup_cpu_seconds": start.cpu,
        "batches": usage.batches,
        "messages_per_batch": usage.batched / usage.batches if usage.batches else math.nan,
        "bytes_written_per_message": written,
        "bytes_stored_per_message": stored,
        "written_over_stored": written / stored if written is not None and stored else None,
        "outcomes": seen.outcomes,
        "exit_code": run.exit_code,
        "problems": seen.problems + ([f"exit code {run.exit_code}"] if run.exit_code else []),
    }


def floor_inputs(site: Site, sample: list[Claim]) -> tuple[list[FloorInput], bytes]:
    """Each sampled claim with the signatures its answer requires and its stored replies'
    sizes; and one AppRec carrier the daemon made (to sign in the floor)."""
    config = load_config(site.config_path)
    choice = reply_signing_of(config)
    uri = f"{site.database.resolve().as_uri()}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        sizes: dict[str, list[int]] = {}
        for name, size in db.execute(
            "SELECT r.source_ref, length(p.body) FROM replies p JOIN received r "
            "ON r.id = p.received_id"
        ):
            sizes.setdefault(str(name).split("--", 1)[-1], []).append(int(size))
    db.close()
    inputs = []
    for claim in sample:
        envelope = parse_envelope(mime.unwrap(claim.raw).envelope.body)
        signatures = required_signatures(choice, None, envelope, partners=False).count(
            ebxml=True, acknowledged=envelope.ack_requested
        )
        bills = claim.raw.count(b"<Enkeltregning")
        inputs.append(FloorInput(claim, signatures, tuple(sizes.get(claim.name, ())), bills))
    apprec = next(p for p in sorted(site.outbox.iterdir()) if ".apprec." in p.name)
    carrier = mime.unwrap(apprec.read_bytes()).attachments[0].body
    return inputs, carrier


def run(args: argparse.Namespace) -> int:
    if args.messages < 1 or args.bills < 1:
        raise SystemExit("--messages and --bills must be at least 1")
    started = time.perf_counter()
    with work_directory(args.keep, "gateway-spool-bench-") as root:
        template = make_site(root / "template")
        say(f"generating {args.messages} messages x {args.bills} bills ...")
        batch = claims(template, args.messages, bills=args.bills, seed=args.seed)
        results: dict[str, Any] = {
            "messages": args.messages,
            "bills_per_message": args.bills,
            "message_bytes_mean": mean([len(c.raw) for c in batch]),
            "seed": args.seed,
        }
        sites: dict[int, Site] = {}
        runs: dict[int, dict[str, Any]] = {}
        for w in WORKER_COUNTS:
            sites[w], runs[w] = throughput(root, w, batch)
        results["throughput"] = {str(w): r for w, r in runs.items()}
        one, two = runs[1], runs[2]
        results["two_over_one_workers"] = two["messages_per_second"] / one["messages_per_second"]
        results["two_over_one_workers_after_startup"] = (
            two["messages_per_second_after_startup"] / one["messages_per_second_after_startup"]
        )

        say("measuring the floor ...")
        every = max(1, len(batch) // args.sample)
        sample = batch[::every][: args.sample]
        inputs, carrier = floor_inputs(sites[2], sample)
        totals, parts = measure_floor(inputs, sites[2].key_file, carrier, root)
        floor_ms = ms(mean(totals))
        results["floor"] = {
            "cpu_ms_per_message": floor_ms,
            "parts_cpu_ms": parts.mean_ms(),
            "signatures_per_message": mean([i.signatures for i in inputs]),
            "sample": len(inputs),
        }
        for w, r in runs.items():
            results["throughput"][str(w)]["floor_over_cpu"] = floor_ms / r["cpu_ms_per_message"]

        default_workers = min(usable_cpus(), max(WORKER_COUNTS))
        rate = 0.5 * runs[default_workers]["messages_per_second_after_startup"]
        count = args.latency_messages
        say(f"latency: {count} messages at {rate:.1f}/s with the shipped defaults ...")
        site = make_site(root / "latency", fast_spool=False)
        latency = run_latency(
            site,
            claims(template, count, bills=args.bills, seed=args.seed + 1, prefix="late"),
            rate,
            root / "latency.log",
        )
        results["latency"] = {
            "rate_per_second": rate,
            "messages": count,
            "answered": len(latency.answered),
            "landing_to_apprec": dist(latency.latencies),
        }
        problems = [f"{w} workers: {p}" for w, r in runs.items() for p in r["problems"]]
        if len(latency.answered) != count:
            problems.append(f"latency: {len(latency.answered)} of {count} answered")
        results["problems"] = problems
        results["correct"] = not problems
        results["total_seconds"] = time.perf_counter() - started
    print_table(results)
    print_bench_json(results)
    return 0 if not problems else 1


def print_table(r: dict[str, Any]) -> None:
    floor = r["floor"]
    lines = [
        f"gateway spool benchmark: {r['messages']} messages x {r['bills_per_message']} bills "
        f"({r['message_bytes_mean'] / 1024:.1f} KiB each), every rule active, logging at info",
        "",
    ]
    for w, t in r["throughput"].items():
        lines += [
            f"{w} worker process(es): gateway run --once",
            row("wall time", f"{t['seconds']:.1f} s", f"start-up {t['startup_seconds']:.1f} s"),
            row(
                "messages/s",
                f"{t['messages_per_second']:.1f}",
                f"{t['messages_per_second_after_startup']:.1f} after start-up",
            ),
            row(
                "CPU per message (user + system, all processes)",
                f"{t['cpu_ms_per_message']:.2f} ms",
                f"daemon {t['cpu_ms_per_message_daemon']:.2f} (writer "
                f"{t['cpu_ms_per_message_writer']:.2f}), workers "
                f"{t['cpu_ms_per_message_workers']:.2f}",
            ),
            row("floor / CPU", f"{t['floor_over_cpu']:.2f}", "goal: 0.60 or more"),
            row(
                "batches",
                f"{t['batches']}",
                f"{t['messages_per_batch']:.1f} messages per batch",
            ),
            row(
                "bytes written / stored per message",
                _bytes(t["bytes_written_per_message"])
                + " / "
                + _bytes(t["bytes_stored_per_message"]),
                f"ratio {t['written_over_stored']:.2f} (goal: 3 or less)"
                if t["written_over_stored"] is not None
                else "",
            ),
            "",
        ]
    lines += [
        row(
            "2 workers / 1 worker, messages/s",
            f"{r['two_over_one_workers']:.2f}",
            f"{r['two_over_one_workers_after_startup']:.2f} after start-up (goal: 1.7 or more)",
        ),
        "",
        f"floor from primitives, on {floor['sample']} of the messages "
        f"({floor['signatures_per_message']:.1f} signatures each, as the configuration requires)",
        row("floor CPU per message", f"{floor['cpu_ms_per_message']:.2f} ms"),
        *(row(f"  {k}", f"{v:.3f} ms") for k, v in floor["parts_cpu_ms"].items()),
        "",
        f"latency with the shipped configuration, {r['latency']['messages']} messages at "
        f"{r['latency']['rate_per_second']:.1f}/s (half the maximum)",
        row(
            "landing in incoming/ -> AppRec file",
            f"{r['latency']['landing_to_apprec']['p50_ms']:.0f} ms",
            f"p50; p99 {r['latency']['landing_to_apprec']['p99_ms']:.0f} ms, max "
            f"{r['latency']['landing_to_apprec']['max_ms']:.0f} ms (goal: p99 under 1000 ms)",
        ),
        "",
        row("result", "OK" if r["correct"] else "WRONG", "; ".join(r["problems"])),
        row("whole benchmark", f"{r['total_seconds']:.0f} s"),
    ]
    print("\n".join(lines), flush=True)


def _bytes(value: float | None) -> str:
    return "?" if value is None else f"{value / 1024:.1f} KiB"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = parser_for("bench.spool_bench", __doc__)
    parser.add_argument(
        "--messages",
        type=int,
        default=int(os.environ.get("BENCH_MESSAGES", DEFAULT_MESSAGES)),
        help="messages per throughput run (env BENCH_MESSAGES; default %(default)s)",
    )
    parser.add_argument(
        "--bills",
        type=int,
        default=int(os.environ.get("BENCH_BILLS", DEFAULT_BILLS)),
        help="bills per message (env BENCH_BILLS; default %(default)s)",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        help="messages the floor is measured on (default %(default)s)",
    )
    parser.add_argument(
        "--latency-messages",
        type=int,
        default=DEFAULT_LATENCY_MESSAGES,
        help="messages dropped at half the maximum rate (default %(default)s)",
    )
    add_seed_and_keep(parser, seed=DEFAULT_SEED, kept="the sites (spool, outbox, database, logs)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
