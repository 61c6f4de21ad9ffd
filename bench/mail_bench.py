"""Mail-path benchmark: dovecot → ``gateway run`` → SMTP sink, with CMS and signatures on.

    python -m bench.mail_bench [--messages N] [--paced P] [--paced-interval MS] [--bills B]
                               [--seed X] [--keep DIR]

``BENCH_MAIL_MESSAGES`` sets the default of ``--messages`` (300).

1. Makes a test CA, our certificate and ``PARTNERS`` partner certificates (``tests.support.
   pki``), one CPA per partner (``gateway.testing.cpa``), and N + P claims as the partners' MSHs
   send them: MsgHead signed, gzipped, CMS-encrypted to us, ebXML envelope signed.
2. Starts a real dovecot (``tests.support.dovecot``), an aiosmtpd sink in this process
   (``tests.support.smtp_sink``) and the real daemon as its own process (``python -m gateway
   run --config FILE``, logging at ``info`` as in production), and waits for its IMAP login.
3. **Burst**: appends the N claims over one IMAP connection as fast as dovecot takes them, and
   waits for every Acknowledgment and AppRec at the sink. Throughput is N over first append →
   last AppRec; latency per claim is its APPEND's completion → its AppRec's arrival at the sink
   (queueing included), and the gateway's share of it (``received.received_at`` → AppRec);
   the daemon's CPU (user + system, from ``/proc``) over the same window.
4. **Paced**: appends P more claims one at a time, at half the burst rate (or every
   ``--paced-interval`` ms), for the latency of a claim that finds the gateway mostly idle.
   Most of it is dovecot's: it batches mailbox changes for 500 ms before an IDLE push
   (``NOTIFY_DELAY_MSECS`` in its mailbox-watch.c), hence the "in the gateway" share.
5. Opens every reply as the partner would (our signatures verified, the AppRec decrypted) and
   checks that each claim got one Acknowledgment and one AppRec with status 1.
6. The *floor* on a sample of the same claims, in this process: the work no gateway can skip
   (MIME unwrap, envelope signature, CMS decrypt + gunzip, MsgHead signature, schema validation,
   a signed AppRec encrypted to the partner, two signed reply envelopes in MIME), and
   ``floor / measured`` per message, as ``bench.spool_bench`` reports it.
7. Prints a table, then one ``BENCH_JSON {...}`` line with every number.

A measurement, not a test: nothing fails for being slow. It exits 1 when the replies are wrong
(missing, undecryptable, not status 1) or the daemon does not stop cleanly; without dovecot it
prints why and exits 0 (1 in CI, where ``CI`` is set).
"""

from __future__ import annotations

import argparse
import contextlib
import imaplib
import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
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
    peak_rss_mib,
    print_bench_json,
    row,
    say,
    tree_cpu_seconds,
    work_directory,
)
from bench.mail_claims import (
    OUR_HER,
    OUR_MAIL,
    PARTNERS,
    Claim,
    check_replies,
    make_claims,
    make_partners,
)
from bench.mail_floor import measure_floor
from gateway.config import IdentityConfig
from gateway.validation.catalog import SchemaCatalog
from tests.support.dovecot import MISSING_REASON, DovecotServer, find_dovecot
from tests.support.mail_site import MailSite, SiteSettings
from tests.support.pki import TestPki
from tests.support.smtp_sink import SmtpSink

DEFAULT_MESSAGES = 300
DEFAULT_PACED = 50
DEFAULT_BILLS = 3
DEFAULT_SEED = 20261123
FLOOR_SAMPLE = 50
IMAP_USER, IMAP_PASSWORD = "kuhr", "bench-secret"
#: How often the arrival clock looks at the sink (its resolution).
ARRIVAL_POLL_SECONDS = 0.002
STARTUP_TIMEOUT = 60.0
REPLY_TIMEOUT = 300.0

SETTINGS = SiteSettings(
    name="HELFO (mail benchmark)",
    her_id=OUR_HER,
    mail_address=OUR_MAIL,
    imap_user=IMAP_USER,
    imap_password=IMAP_PASSWORD,
    smtp={"connections": 2, "poll_interval": 1.0},
    imap={"poll_interval": 1.0, "connect_timeout": 10, "command_timeout": 60},
    daemon={"drain_seconds": 30},
)


# --- 2.-4. the run --------------------------------------------------------------------------------


class ArrivalClock(threading.Thread):
    """Stamps each mail the sink receives with the time it was first seen (epoch seconds)."""

    def __init__(self, sink: SmtpSink) -> None:
        super().__init__(name="arrival-clock", daemon=True)
        self.sink = sink
        self.times: list[float] = []
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.is_set():
            count = len(self.sink.messages)
            now = time.time()
            while len(self.times) < count:
                self.times.append(now)
            time.sleep(ARRIVAL_POLL_SECONDS)

    def wait_for(self, count: int, daemon: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.times) < count:
            if daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited with {daemon.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(self.times)} of {count} replies within {timeout} s")
            time.sleep(0.01)


class Appender:
    """One IMAP connection to dovecot; records when each APPEND completed (epoch seconds)."""

    def __init__(self, server: DovecotServer) -> None:
        self.client = imaplib.IMAP4("127.0.0.1", server.port, timeout=30)
        self.client.login(IMAP_USER, IMAP_PASSWORD)
        self.appended: dict[str, float] = {}
        self.first_started = math.nan

    def append(self, claim: Claim) -> None:
        if math.isnan(self.first_started):
            self.first_started = time.time()
        status, data = self.client.append("INBOX", None, None, claim.raw)
        if status != "OK":
            raise RuntimeError(f"APPEND failed: {data!r}")
        self.appended[claim.message_id] = time.time()

    def close(self) -> None:
        self.client.logout()


@dataclass(slots=True)
class Phase:
    """One phase of the run: what was appended and the daemon's CPU meanwhile."""

    claims: list[Claim]
    started: float  # epoch: the first APPEND began
    ended: float = math.nan  # epoch: the last reply arrived
    cpu_seconds: float = math.nan
    latencies: list[float] = field(default_factory=list)  # APPEND done -> AppRec arrived

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def run_phase(
    claims: list[Claim],
    appender: Appender,
    clock: ArrivalClock,
    daemon: subprocess.Popen[bytes],
    *,
    interval: float,
) -> Phase:
    """Append ``claims`` (``interval`` seconds apart; 0: back to back) and wait for both replies
    to each."""
    expected = len(clock.times) + 2 * len(claims)
    cpu_before = tree_cpu_seconds(daemon.pid)
    phase = Phase(claims, started=time.time())
    next_at = time.perf_counter()
    for claim in claims:
        if interval:
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += interval
        appender.append(claim)
    clock.wait_for(expected, daemon, REPLY_TIMEOUT)
    phase.ended = clock.times[expected - 1]
    phase.cpu_seconds = tree_cpu_seconds(daemon.pid) - cpu_before
    return phase


# --- 5. what came out -----------------------------------------------------------------------------


def received_at(database: Path) -> dict[str, float]:
    """claim MessageId -> when the daemon's pipeline received it (epoch seconds)."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT m.ebxml_message_id, r.received_at FROM messages m "
            "JOIN received r ON r.id = m.received_id"
        ).fetchall()
    return {str(mid): datetime.fromisoformat(str(at)).timestamp() for mid, at in rows}


# --- 7. report ------------------------------------------------------------------------------------


def print_table(r: dict[str, Any]) -> None:
    def d(key: str) -> str:
        return p50_p99(r[key], 0)

    lines = [
        f"gateway mail benchmark: dovecot -> gateway run -> SMTP sink, CMS + signatures on; "
        f"{r['messages']} + {r['paced_messages']} claims x {r['bills_per_message']} bills "
        f"({r['message_bytes_mean'] / 1024:.1f} KiB each), {r['partners']} partners",
        "",
        row("daemon start -> IMAP logged in", f"{r['daemon_startup_seconds']:.2f} s"),
        "burst (all appended back to back)",
        row("messages/s", f"{r['messages_per_second']:.1f}", "first APPEND -> last AppRec"),
        row("per message", f"{r['per_message_ms']:.1f} ms"),
        row("latency APPEND done -> AppRec at the sink", d("latency_burst"), "queueing included"),
        row("  of which in the gateway (received_at -> AppRec)", d("latency_burst_in_gateway")),
        row(
            "daemon CPU per message (user + system)",
            f"{r['daemon_cpu_per_message_ms']:.1f} ms",
            f"busy {r['daemon_cpu_busy_fraction']:.0%} of the window",
        ),
        f"paced (one every {r['paced_interval_ms']:.0f} ms)",
        row("latency APPEND done -> AppRec at the sink", d("latency_paced")),
        row(
            "  of which in the gateway (received_at -> AppRec)",
            d("latency_paced_in_gateway"),
            "the rest: dovecot's IDLE push (~0.5 s) + fetch",
        ),
        row("daemon peak RSS", f"{r['daemon_peak_rss_mib']:.0f} MiB"),
        "",
        f"floor on {r['floor_sample']} of the claims (in this process, loaded keys)",
        *floor_rows(r),
        "",
        "correctness",
        row("replies by action", json.dumps(r["replies_by_action"], sort_keys=True)),
        row("AppRec statuses", json.dumps(r["apprec_statuses"], sort_keys=True)),
        row("daemon exit code after SIGTERM", str(r["daemon_exit_code"])),
        row("result", "OK" if r["correct"] else "WRONG", "; ".join(r["problems"][:5])),
        row(
            "whole benchmark",
            f"{r['total_seconds']:.1f} s",
            f"generation {r['generation_seconds']:.1f} s",
        ),
    ]
    print("\n".join(lines), flush=True)


# --- main -----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    if args.messages < 1 or args.paced < 0 or args.bills < 1:
        raise SystemExit("--messages and --bills must be at least 1, --paced at least 0")
    if find_dovecot() is None:
        say(f"mail benchmark skipped: {MISSING_REASON}")
        print_bench_json({"skipped": MISSING_REASON})
        return 1 if os.environ.get("CI") else 0
    wall_started = time.perf_counter()
    with work_directory(args.keep, "gateway-mail-bench-") as root:
        return _run_in(root, args, wall_started)


@dataclass(slots=True)
class Measured:
    """What the daemon run gave: its phases, start-up time, peak memory and exit code."""

    burst: Phase
    paced: Phase | None
    interval: float  # seconds between paced claims
    startup: float
    rss_mib: float
    exit_code: int
    appended: dict[str, float]  # claim MessageId -> APPEND done (epoch)


def run_daemon(
    site: MailSite,
    clock: ArrivalClock,
    burst: list[Claim],
    paced: list[Claim],
    args: argparse.Namespace,
) -> Measured:
    """Start the daemon, run the burst and the paced phase, stop it with SIGTERM."""
    site.start()
    appender: Appender | None = None
    try:
        startup = site.wait_until_logged("imap_connected", STARTUP_TIMEOUT)
        appender = Appender(site.dovecot)
        say(f"  burst: appending {len(burst)} claims ...")
        burst_phase = run_phase(burst, appender, clock, site.running, interval=0.0)
        per_message = burst_phase.seconds / len(burst)
        interval = args.paced_interval / 1000 if args.paced_interval else 2 * per_message
        say(
            f"  burst done in {burst_phase.seconds:.1f} s; paced: {len(paced)} claims, one "
            f"every {ms(interval):.0f} ms ..."
        )
        paced_phase = (
            run_phase(paced, appender, clock, site.running, interval=interval) if paced else None
        )
        rss = peak_rss_mib(site.running.pid)
    finally:
        if appender is not None:
            appender.close()
        try:
            exit_code = site.stop(timeout=60)
        except subprocess.TimeoutExpired:  # killed: the exit code says so
            exit_code = site.running.returncode
        clock.finished.set()
        clock.join()
    assert appender is not None
    return Measured(burst_phase, paced_phase, interval, startup, rss, exit_code, appender.appended)


def _run_in(root: Path, args: argparse.Namespace, wall_started: float) -> int:
    say("making certificates, CPAs and claims ...")
    generation_started = time.perf_counter()
    pki = TestPki.create()
    partners = make_partners(pki)
    claims = make_claims(
        pki, partners, count=args.messages + args.paced, bills=args.bills, seed=args.seed
    )
    burst, paced = claims[: args.messages], claims[args.messages :]
    generation_seconds = time.perf_counter() - generation_started

    with DovecotServer({IMAP_USER: IMAP_PASSWORD}) as dovecot, SmtpSink() as sink:
        site = MailSite(root, pki.gateway, dovecot, sink, SETTINGS, cpas=[p.cpa for p in partners])
        clock = ArrivalClock(sink)
        clock.start()
        say(f"  {len(claims)} claims in {generation_seconds:.1f} s; starting the daemon ...")
        run = run_daemon(site, clock, burst, paced, args)
        say("  checking every reply and measuring the floor ...")
        checked = check_replies(sink, clock.times, pki, partners, claims)

    def latencies(phase_claims: Sequence[Claim], since: dict[str, float]) -> list[float]:
        return [
            checked.apprec_arrival[c.message_id] - since[c.message_id]
            for c in phase_claims
            if c.message_id in checked.apprec_arrival and c.message_id in since
        ]

    run.burst.latencies = latencies(burst, run.appended)
    paced_latencies = latencies(paced, run.appended)
    # The gateway's own share: its pipeline took the mail in (received_at) -> AppRec at the sink.
    received = received_at(site.database)
    in_gateway = {"burst": latencies(burst, received), "paced": latencies(paced, received)}

    catalog = SchemaCatalog.default()
    catalog.compile()
    identity = IdentityConfig(
        "HELFO (mail benchmark)", OUR_HER, "889640782", "KontrollUtbetaler", OUR_MAIL
    )
    every = max(1, len(claims) // FLOOR_SAMPLE)
    sample = claims[::every][:FLOOR_SAMPLE]
    floor_totals, floor_parts = measure_floor(sample, pki, catalog, identity)

    per_message = run.burst.seconds / len(burst)
    problems = list(checked.problems)
    if run.exit_code != 0:
        problems.append(f"daemon exit code {run.exit_code} after SIGTERM")
    results: dict[str, Any] = {
        "messages": len(burst),
        "paced_messages": len(paced),
        "bills_per_message": args.bills,
        "partners": PARTNERS,
        "seed": args.seed,
        "message_bytes_mean": mean([len(c.raw) for c in claims]),
        "generation_seconds": generation_seconds,
        "daemon_startup_seconds": run.startup,
        "burst_seconds": run.burst.seconds,
        "messages_per_second": len(burst) / run.burst.seconds,
        "per_message_ms": ms(per_message),
        "latency_burst": dist(run.burst.latencies),
        "daemon_cpu_seconds_burst": run.burst.cpu_seconds,
        "daemon_cpu_per_message_ms": ms(run.burst.cpu_seconds / len(burst)),
        "daemon_cpu_busy_fraction": run.burst.cpu_seconds / run.burst.seconds,
        "paced_interval_ms": ms(run.interval),
        "latency_paced": dist(paced_latencies),
        "latency_paced_in_gateway": dist(in_gateway["paced"]),
        "latency_burst_in_gateway": dist(in_gateway["burst"]),
        "daemon_cpu_per_message_ms_paced": (
            ms(run.paced.cpu_seconds / len(paced)) if run.paced else math.nan
        ),
        "daemon_peak_rss_mib": run.rss_mib,
        "bench_process_peak_rss_mib": own_peak_rss_mib(),
        "floor_sample": len(sample),
        **floor_results(floor_totals, floor_parts, per_message),
        "replies_by_action": checked.counts,
        "apprec_statuses": checked.statuses,
        "daemon_exit_code": run.exit_code,
        "correct": not problems,
        "problems": problems,
        "total_seconds": time.perf_counter() - wall_started,
    }
    print_table(results)
    if problems:
        say(f"daemon log tail:\n{site.log_tail(30)}")
    print_bench_json(results)
    return 0 if not problems else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = parser_for("bench.mail_bench", __doc__)
    parser.add_argument(
        "--messages",
        type=int,
        default=int(os.environ.get("BENCH_MAIL_MESSAGES", DEFAULT_MESSAGES)),
        help="claims appended back to back (env BENCH_MAIL_MESSAGES; default %(default)s)",
    )
    parser.add_argument(
        "--paced",
        type=int,
        default=DEFAULT_PACED,
        help="claims appended one at a time afterwards, for idle latency (default %(default)s)",
    )
    parser.add_argument(
        "--paced-interval",
        type=float,
        default=0.0,
        metavar="MS",
        help="milliseconds between paced claims (default: twice the burst's time per claim)",
    )
    parser.add_argument(
        "--bills", type=int, default=DEFAULT_BILLS, help="bills per claim (default %(default)s)"
    )
    add_seed_and_keep(parser, seed=DEFAULT_SEED, kept="config, database and daemon log")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
