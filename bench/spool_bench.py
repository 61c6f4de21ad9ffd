"""End-to-end spool benchmark: generated claims through the real daemon path, in process.

    python -m bench.spool_bench [--messages N] [--bills B] [--sample S] [--seed X]
                                [--keep DIR] [--profile]

``BENCH_MESSAGES`` / ``BENCH_BILLS`` set the defaults of ``--messages`` / ``--bills`` (2000, 5).

1. Generates N claim messages (``make_claim``, seeded, practitioners and senders mixed, B bills
   each, treatment dates weeks in the past so rule 766 does not fire, fresh Guids and MsgIds so
   nothing is a duplicate) as ebXML MIME ``.msg`` files in a fresh spool's ``incoming/``.
2. Runs the real daemon once, in process: ``asyncio.run(run_daemon(config, once=True))``.
3. Reads what the daemon left behind, without touching gateway code: the claim time encoded in
   each ``processed/`` name, each AppRec file's mtime, and the database's ``received_at`` and
   ``replies.delivered_at``; from those, per-message latency and a queue / in-hand split.
4. On a sample of the same messages, in the same process: the *floor* (MIME unwrap, payload
   parse, schema validation, one signed AppRec), ``Pipeline.handle`` alone on a fresh store, and
   the daemon's per-message work stage by stage (mirroring ``Daemon._process``).
5. Prints a table, then one ``BENCH_JSON {...}`` line with every number.

This is a measurement, not a test: nothing here fails because something is slow. It does fail
(exit 1) if the daemon's output is wrong (missing AppRecs, messages not all accepted).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    add_seed_and_keep,
    dist,
    floor_results,
    floor_rows,
    mean,
    ms,
    own_peak_rss_mib,
    p50_p99,
    parser_for,
    past_claim,
    print_bench_json,
    row,
    say,
    work_directory,
)
from bench.spool_breakdown import (
    Sample,
    measure_floor,
    measure_fsync,
    measure_handle,
    measure_stages,
)
from bench.spool_daemon import latencies, observe, run_the_daemon
from gateway.clock import local_naive, utc_now
from gateway.config import Config
from gateway.logs import configure_logging
from gateway.receipts.keys import generate_dev_credentials
from gateway.records import Outcome
from gateway.security.xmldsig import load_signer
from gateway.testing.claims import default_receiver, default_sender, msghead_with_bkm
from gateway.testing.messages import Route, ebxml_message
from gateway.validation.catalog import SchemaCatalog

DEFAULT_MESSAGES = 2000
DEFAULT_BILLS = 5
DEFAULT_SAMPLE = 300
DEFAULT_SEED = 20240917
OUR_HER = "79768"
SENDER_COUNT = 40
FIRST_SENDER_HER = 8141253
GENERATION_PROGRESS_EVERY = 500


# --- 1. generation --------------------------------------------------------------------------------


@dataclass(slots=True)
class Generated:
    samples: list[Sample]
    total_bytes: int
    seconds: float


def generate(
    incoming: Path, *, messages: int, bills: int, seed: int, sample_size: int
) -> Generated:
    """Write ``messages`` distinct, valid claim messages into ``incoming``."""
    started = time.perf_counter()
    rng = random.Random(seed)
    receiver = default_receiver(OUR_HER)
    senders = [
        default_sender(str(FIRST_SENDER_HER + k), name=f"Benkeklinikk {k} AS")
        for k in range(SENDER_COUNT)
    ]
    today = local_naive(utc_now()).date()
    every = max(1, messages // max(1, sample_size))
    samples: list[Sample] = []
    total_bytes = 0
    for i in range(messages):
        sender = rng.choice(senders)
        head, krav = past_claim(rng, today=today, bills=bills, sender=sender, receiver=receiver)
        raw = ebxml_message(
            msghead_with_bkm(head, krav),
            route=Route(from_her=sender.her_id or "", to_her=OUR_HER),
            rng=rng,
        )
        name = f"claim-{i:06d}.msg"
        (incoming / name).write_bytes(raw)
        total_bytes += len(raw)
        if i % every == 0 and len(samples) < sample_size:
            samples.append(Sample(name, raw, head))
        if (i + 1) % GENERATION_PROGRESS_EVERY == 0 and i + 1 < messages:
            say(f"  generated {i + 1}/{messages} ({time.perf_counter() - started:.1f} s)")
    return Generated(samples, total_bytes, time.perf_counter() - started)


# --- 2. the site ----------------------------------------------------------------------------------


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
    }
    # The path is never read: from_mapping only resolves relative paths against its directory.
    return Config.from_mapping(data, root / "bench.toml")


# --- 3. the run and its report --------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    messages: int = args.messages
    bills: int = args.bills
    if messages < 1 or bills < 1:
        raise SystemExit("--messages and --bills must be at least 1")
    wall_started = time.perf_counter()
    with work_directory(args.keep, "gateway-spool-bench-") as root:
        return _run_in(root, args, messages, bills, wall_started)


def _run_in(
    root: Path, args: argparse.Namespace, messages: int, bills: int, wall_started: float
) -> int:
    config = make_config(root)
    configure_logging(config.logging.level, config.logging.format)
    generate_dev_credentials(
        config.signing.key_file,
        config.signing.cert_file,
        common_name="gateway benchmark",
        organisation="HELFO (benchmark)",
        her_id=OUR_HER,
    )
    config.spool.incoming.mkdir(parents=True)

    say(f"generating {messages} messages x {bills} bills into {config.spool.incoming} ...")
    generated = generate(
        config.spool.incoming,
        messages=messages,
        bills=bills,
        seed=args.seed,
        sample_size=args.sample,
    )
    # Flush the generated files to disk now: otherwise the daemon's first fsyncs (ext4 journal
    # commits) would pay for writing back the whole spool that generation left dirty.
    os.sync()
    say(f"  generated {messages} in {generated.seconds:.1f} s; running the daemon ...")
    rss_before_daemon = own_peak_rss_mib()

    daemon = run_the_daemon(config, messages, profile=args.profile)
    rss_after_daemon = own_peak_rss_mib()
    say(f"  daemon done in {daemon.seconds:.1f} s; checking output and measuring the floor ...")

    signer = load_signer(config.signing.key_file, config.signing.cert_file)
    seen = observe(config, signer)
    lat = latencies(seen)
    first_claim = min(seen.claimed.values()) if seen.claimed else math.nan
    startup_seconds = first_claim - daemon.started_wall

    catalog = SchemaCatalog.default(extra_dirs=config.validation.official_schema_dirs)
    catalog.compile()
    samples = generated.samples
    floor_totals, floor_parts = measure_floor(samples, catalog, signer, config.identity)
    handle_totals = measure_handle(samples, root / "side-handle", config, catalog, signer)
    stages = measure_stages(samples, root / "side-stages", config, catalog, signer)
    fsync_times = measure_fsync(root / "side-fsync")

    # --- checks (correctness, not speed) ---
    problems: list[str] = []
    if daemon.exit_code != 0:
        problems.append(f"daemon exit code {daemon.exit_code}")
    if seen.apprec_files != messages:
        problems.append(f"{seen.apprec_files} AppRec files, expected {messages}")
    if seen.ack_files != messages:
        problems.append(f"{seen.ack_files} Acknowledgment files, expected {messages}")
    if seen.processed_files != messages or seen.left_in_spool:
        problems.append(
            f"{seen.processed_files} files processed, {seen.left_in_spool} left in the spool"
        )
    accepted = seen.store_counts.get(Outcome.ACCEPTED.value, 0)
    if accepted != messages or seen.store_counts.get("pending_replies", 0):
        problems.append(f"store counts {seen.store_counts}, expected {messages} accepted")
    if any(status != "1" for status in seen.apprec_statuses_checked):
        problems.append(f"AppRec statuses checked: {seen.apprec_statuses_checked}")

    # --- numbers ---
    total_bills = messages * bills
    per_message = daemon.seconds / messages
    handle_per_message = mean(handle_totals)
    stage_ms = stages.mean_ms()
    stages_sum_ms = sum(stage_ms.values())
    results: dict[str, Any] = {
        "messages": messages,
        "bills_per_message": bills,
        "seed": args.seed,
        "sample": len(samples),
        "message_bytes_mean": generated.total_bytes / messages,
        "generation_seconds": generated.seconds,
        "daemon_seconds": daemon.seconds,
        "daemon_startup_seconds": startup_seconds,
        "processing_window_seconds": lat.window_seconds,
        "messages_per_second": messages / daemon.seconds,
        "bills_per_second": total_bills / daemon.seconds,
        "messages_per_second_window": messages / lat.window_seconds,
        "per_message_ms": ms(per_message),
        "daemon_cpu_user_seconds": daemon.cpu_user,
        "daemon_cpu_system_seconds": daemon.cpu_system,
        "daemon_cpu_per_message_ms": ms((daemon.cpu_user + daemon.cpu_system) / messages),
        "daemon_cpu_busy_fraction": (daemon.cpu_user + daemon.cpu_system) / daemon.seconds,
        "latency_claim_to_apprec_file": dist(lat.claim_to_apprec_file),
        "latency_claim_to_delivered_at": dist(lat.claim_to_delivered),
        "queue_wait_in_batch": dist(lat.queue_wait),
        "in_hand_received_to_delivered": dist(lat.in_hand),
        "between_messages": dist(lat.between),
        "apprec_mtime_lag_behind_delivered_at": dist(lat.mtime_lag),
        "peak_rss_mib_before_daemon": rss_before_daemon,
        "peak_rss_mib_after_daemon": rss_after_daemon,
        "peak_rss_mib": own_peak_rss_mib(),
        **floor_results(floor_totals, floor_parts, per_message),
        "pipeline_handle_only": {
            **dist(handle_totals),
            "messages_per_second": 1 / handle_per_message,
        },
        "stages_mean_ms": stage_ms,
        "stages_sum_ms": stages_sum_ms,
        "daemon_minus_stages_ms": ms(per_message) - stages_sum_ms,
        "durable_file_write": dist(fsync_times),
        "store_counts": seen.store_counts,
        "apprec_files": seen.apprec_files,
        "ack_files": seen.ack_files,
        "correct": not problems,
        "problems": problems,
        "total_seconds": time.perf_counter() - wall_started,
    }
    print_table(results)
    if daemon.profile is not None:
        say("cProfile of the pipeline worker thread during the daemon run:")
        say(daemon.profile)
    print_bench_json(results)
    return 0 if not problems else 1


def print_table(r: dict[str, Any]) -> None:
    def d(key: str) -> str:
        return p50_p99(r[key], 1)

    lines = [
        f"gateway spool benchmark: {r['messages']} messages x {r['bills_per_message']} bills "
        f"({r['message_bytes_mean'] / 1024:.1f} KiB each), seed {r['seed']}",
        "",
        "end to end (asyncio.run(run_daemon(config, once=True)))",
        row(
            "daemon run",
            f"{r['daemon_seconds']:.2f} s",
            f"startup {r['daemon_startup_seconds'] * 1000:.0f} ms",
        ),
        row(
            "messages/s",
            f"{r['messages_per_second']:.1f}",
            f"{r['messages_per_second_window']:.1f} first claim -> last AppRec",
        ),
        row("bills/s", f"{r['bills_per_second']:.1f}"),
        row("per message", f"{r['per_message_ms']:.2f} ms"),
        row(
            "  CPU per message (user + system, all threads)",
            f"{r['daemon_cpu_per_message_ms']:.2f} ms",
            f"busy {r['daemon_cpu_busy_fraction']:.0%} of the run; "
            f"system {r['daemon_cpu_system_seconds']:.1f} of "
            f"{r['daemon_cpu_user_seconds'] + r['daemon_cpu_system_seconds']:.1f} s",
        ),
        row(
            "latency claim -> AppRec file (mtime)",
            f"{r['latency_claim_to_apprec_file']['p50_ms']:.0f} ms",
            f"p50; p99 {r['latency_claim_to_apprec_file']['p99_ms']:.0f} ms",
        ),
        row("  cross-check: claim -> replies.delivered_at", d("latency_claim_to_delivered_at")),
        row("  of which waiting behind the claimed batch", d("queue_wait_in_batch")),
        row("  of which in hand (received_at -> delivered_at)", d("in_hand_received_to_delivered")),
        row("  between messages (done, handoff, next read)", d("between_messages")),
        row("  AppRec mtime lags delivered_at by", d("apprec_mtime_lag_behind_delivered_at")),
        row(
            "peak RSS",
            f"{r['peak_rss_mib']:.0f} MiB",
            f"{r['peak_rss_mib_after_daemon']:.0f} after the daemon, "
            f"{r['peak_rss_mib_before_daemon']:.0f} before",
        ),
        "",
        f"floor on {r['sample']} of the messages (unwrap + parse + validate + signed AppRec)",
        *floor_rows(r),
        "",
        "where the measured time goes (same sample, fresh store, this thread)",
        row(
            "Pipeline.handle alone (incl. SQLite commit)",
            f"{r['pipeline_handle_only']['mean_ms']:.2f} ms",
            f"{r['pipeline_handle_only']['messages_per_second']:.0f} messages/s",
        ),
    ]
    lines += [row(f"  {k}", f"{v:.3f} ms") for k, v in r["stages_mean_ms"].items()]
    lines += [
        row("  sum of the steps", f"{r['stages_sum_ms']:.2f} ms"),
        row(
            "  daemon per message minus the steps",
            f"{r['daemon_minus_stages_ms']:.2f} ms",
            "(event loop, worker handoff, logging, bigger DB)",
        ),
        row("one durable 4 KiB file write on this disk", d("durable_file_write")),
        "",
        "correctness",
        row("AppRec files / Acknowledgment files", f"{r['apprec_files']} / {r['ack_files']}"),
        row("store counts", json.dumps(r["store_counts"], sort_keys=True)),
        row("result", "OK" if r["correct"] else "WRONG", "; ".join(r["problems"])),
        row(
            "whole benchmark",
            f"{r['total_seconds']:.1f} s",
            f"generation {r['generation_seconds']:.1f} s",
        ),
    ]
    print("\n".join(lines), flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = parser_for("bench.spool_bench", __doc__)
    parser.add_argument(
        "--messages",
        type=int,
        default=int(os.environ.get("BENCH_MESSAGES", DEFAULT_MESSAGES)),
        help="messages to generate (env BENCH_MESSAGES; default %(default)s)",
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
        help="messages used for the floor and the stage breakdown (default %(default)s)",
    )
    add_seed_and_keep(parser, seed=DEFAULT_SEED, kept="spool, outbox and database")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the pipeline worker thread during the daemon run (report on stderr)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
