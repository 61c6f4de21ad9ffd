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
import asyncio
import cProfile
import hashlib
import io
import itertools
import json
import math
import os
import pstats
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from types import FrameType
from typing import Any

from bench.floor import signed_ok_apprec
from gateway.claims.model import MsgHead
from gateway.clock import local_naive, utc_now
from gateway.config import Config, IdentityConfig, SpoolConfig
from gateway.daemon import run_daemon
from gateway.ebxml import mime
from gateway.inbox.spool import BATCH, Spool
from gateway.logs import configure_logging
from gateway.outbox.files import FileOutbox
from gateway.pipeline import STAGES, Pipeline, Work
from gateway.receipts.apprec import (
    APPREC_NS,
    apprec_from_msghead,
)
from gateway.receipts.keys import generate_dev_credentials
from gateway.receipts.signing import Signer, load_signer, verify
from gateway.records import Outcome, ReceivedRecord
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.store.sqlite import Store
from gateway.testing.claims import (
    Practitioner,
    default_receiver,
    default_sender,
    make_claim,
    msghead_with_bkm,
)
from gateway.testing.messages import Route, ebxml_message
from gateway.validation.catalog import SchemaCatalog
from gateway.validation.safe_xml import parse_xml

DEFAULT_MESSAGES = 2000
DEFAULT_BILLS = 5
DEFAULT_SAMPLE = 300
DEFAULT_SEED = 20240917
OUR_HER = "79768"
SENDER_COUNT = 40
FIRST_SENDER_HER = 8141253
PRACTITIONERS: tuple[Practitioner, ...] = ("tannlege", "lege", "psykolog", "lab")
GENERATION_PROGRESS_EVERY = 500
DAEMON_PROGRESS_SECONDS = 5.0
FSYNC_PROBES = 50


# --- small helpers --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ms(seconds: float) -> float:
    return seconds * 1000.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# --- 1. generation --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """A generated message kept in memory for the in-process measurements."""

    name: str
    raw: bytes
    head: MsgHead


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
    # Bills follow each other 15-60 minutes apart in weekday office hours: at most ~0.2 days per
    # bill. Starting at least this far back keeps every DatoTid (and GenDate) in the past.
    days_back = 14 + bills // 4
    every = max(1, messages // max(1, sample_size))
    samples: list[Sample] = []
    total_bytes = 0
    for i in range(messages):
        sender = rng.choice(senders)
        day = today - timedelta(days=rng.randint(days_back, days_back + 90))
        start = datetime.combine(day, clock_time(8, 0)) + timedelta(minutes=15 * rng.randint(0, 24))
        head, krav = make_claim(
            rng=rng,
            practitioner=rng.choice(PRACTITIONERS),
            bills=bills,
            sender=sender,
            receiver=receiver,
            start=start,
        )
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


# --- 2. the daemon run ----------------------------------------------------------------------------


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


class ProgressWatcher(threading.Thread):
    """Prints the number of processed files to stderr now and then (for large runs)."""

    def __init__(self, processed: Path, total: int) -> None:
        super().__init__(name="bench-progress", daemon=True)
        self.processed = processed
        self.total = total
        self.finished = threading.Event()
        self.started_at = time.perf_counter()

    def run(self) -> None:
        while not self.finished.wait(DAEMON_PROGRESS_SECONDS):
            with os.scandir(self.processed) as entries:
                done = sum(1 for _ in entries)
            elapsed = time.perf_counter() - self.started_at
            say(f"  daemon: {done}/{self.total} processed ({elapsed:.0f} s)")


def profile_pipeline_thread(profiler: cProfile.Profile) -> None:
    """Profile the daemon's pipeline worker thread (cProfile only sees its own thread).

    ``threading.setprofile`` installs a hook in threads started from now on; in the worker it
    hands over to ``profiler`` at the first event, and in any other thread it removes itself.
    """

    def hand_over(_frame: FrameType, _event: str, _arg: Any) -> None:
        if threading.current_thread().name.startswith("pipeline"):
            profiler.enable()
        else:
            sys.setprofile(None)

    threading.setprofile(hand_over)


@dataclass(slots=True)
class DaemonRun:
    exit_code: int
    seconds: float
    started_wall: float  # time.time() just before the run
    cpu_user: float  # process CPU seconds during the run (all threads)
    cpu_system: float
    profile: str | None


def run_the_daemon(config: Config, total: int, *, profile: bool) -> DaemonRun:
    watcher = ProgressWatcher(config.spool.processed, total)
    watcher.start()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profile_pipeline_thread(profiler)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started_wall = time.time()
    started = time.perf_counter()
    try:
        exit_code = asyncio.run(run_daemon(config, once=True))
    finally:
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        threading.setprofile(None)
        watcher.finished.set()
        watcher.join()
    report: str | None = None
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        report = out.getvalue()
    return DaemonRun(
        exit_code,
        seconds,
        started_wall,
        after.ru_utime - usage.ru_utime,
        after.ru_stime - usage.ru_stime,
        report,
    )


# --- 3. what the daemon left behind ---------------------------------------------------------------


def _stem(original_name: str) -> str:
    return original_name.rsplit(".", 1)[0]


def _claim_time(work_name: str) -> float:
    """Epoch seconds from a spool name ``{UTC %Y%m%dT%H%M%S%f}-{uuid8}--{original}``."""
    prefix = work_name.split("--", 1)[0]
    stamp = prefix.rsplit("-", 1)[0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC).timestamp()


def _iso_epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass(slots=True)
class Observed:
    """Per-message times (epoch seconds) and the checks on the daemon's output."""

    claimed: dict[str, float] = field(default_factory=dict)  # by file stem
    apprec_mtime: dict[str, float] = field(default_factory=dict)
    received_at: dict[str, float] = field(default_factory=dict)
    apprec_delivered: dict[str, float] = field(default_factory=dict)
    apprec_files: int = 0
    ack_files: int = 0
    other_outbox_files: int = 0
    processed_files: int = 0
    left_in_spool: int = 0
    store_counts: dict[str, int] = field(default_factory=dict)
    apprec_statuses_checked: list[str] = field(default_factory=list)


def observe(config: Config, signer: Signer) -> Observed:
    seen = Observed()
    source_ref_stem: dict[str, str] = {}
    with os.scandir(config.spool.processed) as entries:
        for entry in entries:
            original = entry.name.split("--", 1)[-1]
            seen.claimed[_stem(original)] = _claim_time(entry.name)
            source_ref_stem[entry.name] = _stem(original)
            seen.processed_files += 1
    for directory in (config.spool.incoming, config.spool.work, config.spool.bad):
        seen.left_in_spool += sum(1 for _ in directory.iterdir())

    apprec_paths: list[Path] = []
    with os.scandir(config.outbox.directory) as entries:
        for entry in entries:
            if ".apprec." in entry.name:
                seen.apprec_files += 1
                stem = entry.name.split(".apprec.", 1)[0]
                seen.apprec_mtime[stem] = entry.stat().st_mtime_ns / 1e9
                apprec_paths.append(Path(entry.path))
            elif ".acknowledgment." in entry.name:
                seen.ack_files += 1
            else:
                seen.other_outbox_files += 1

    uri = f"{config.database.resolve().as_uri()}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = db.execute(
            "SELECT r.source_ref, r.received_at, p.delivered_at FROM received r "
            "JOIN replies p ON p.received_id = r.id WHERE p.kind = 'apprec'"
        ).fetchall()
    db.close()
    for source_ref, received_at, delivered_at in rows:
        key = source_ref_stem.get(str(source_ref))
        if key is None:
            continue
        seen.received_at[key] = _iso_epoch(str(received_at))
        if delivered_at is not None:
            seen.apprec_delivered[key] = _iso_epoch(str(delivered_at))

    store = Store(config.database)
    try:
        seen.store_counts = store.counts()
    finally:
        store.close()

    # Check a few AppRecs properly: signature valid, status OK.
    for path in sorted(apprec_paths)[:1] + sorted(apprec_paths)[-1:]:
        package = mime.unwrap(path.read_bytes())
        signed = verify(package.attachments[0].body, signer.cert_pem)
        status = apprec_from_msghead(signed).find(f"{{{APPREC_NS}}}Status")
        seen.apprec_statuses_checked.append("?" if status is None else str(status.get("V")))
    return seen


@dataclass(slots=True)
class Latency:
    """Derived per-message times, in seconds."""

    claim_to_apprec_file: list[float]  # AppRec file mtime − claim time (the asked-for number)
    claim_to_delivered: list[float]  # replies.delivered_at − claim time (cross-check)
    queue_wait: list[float]  # received_at − claim time: waiting behind the rest of the batch
    in_hand: list[float]  # delivered_at − received_at: pipeline + commit + outbox
    between: list[float]  # next received_at − delivered_at: spool.done, handoff, next read
    mtime_lag: list[float]  # delivered_at − AppRec mtime (coarse file clock shows here)
    window_seconds: float  # first claim → last AppRec file


def latencies(seen: Observed) -> Latency:
    stems = [s for s in seen.claimed if s in seen.apprec_mtime]
    claim_to_file = [seen.apprec_mtime[s] - seen.claimed[s] for s in stems]
    with_db = [s for s in stems if s in seen.received_at and s in seen.apprec_delivered]
    claim_to_delivered = [seen.apprec_delivered[s] - seen.claimed[s] for s in with_db]
    queue = [seen.received_at[s] - seen.claimed[s] for s in with_db]
    in_hand = [seen.apprec_delivered[s] - seen.received_at[s] for s in with_db]
    lag = [seen.apprec_delivered[s] - seen.apprec_mtime[s] for s in with_db]
    ordered = sorted(with_db, key=lambda s: seen.received_at[s])
    between = [
        seen.received_at[b] - seen.apprec_delivered[a] for a, b in itertools.pairwise(ordered)
    ]
    window = (
        max(seen.apprec_mtime[s] for s in stems) - min(seen.claimed[s] for s in stems)
        if stems
        else math.nan
    )
    return Latency(claim_to_file, claim_to_delivered, queue, in_hand, between, lag, window)


# --- 4. the floor and the stage breakdown ---------------------------------------------------------


@dataclass(slots=True)
class Timings:
    """Seconds per message, per named part, in insertion order."""

    parts: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.parts.setdefault(name, []).append(seconds)

    def mean_ms(self) -> dict[str, float]:
        return {name: ms(mean(values)) for name, values in self.parts.items()}


def measure_floor(
    samples: Sequence[Sample], catalog: SchemaCatalog, signer: Signer, identity: IdentityConfig
) -> tuple[list[float], Timings]:
    """Unavoidable work: MIME unwrap, payload parse, schema validation, one signed AppRec."""
    us = identity.organisation()
    parts = Timings()
    totals: list[float] = []
    for sample in samples:
        t0 = time.perf_counter()
        package = mime.unwrap(sample.raw)
        payload = package.attachments[0].body
        t1 = time.perf_counter()
        root = parse_xml(payload)
        t2 = time.perf_counter()
        report = catalog.validate(root)
        t3 = time.perf_counter()
        if not report.valid:
            raise RuntimeError(f"generated message {sample.name} is not schema-valid: {report}")
        now = local_naive(utc_now()).replace(microsecond=0)
        head = sample.head  # known from generation: the floor does not even read the MsgHead
        signed_ok_apprec(head, us, signer, now)
        t4 = time.perf_counter()
        parts.add("mime.unwrap", t1 - t0)
        parts.add("parse_xml (payload)", t2 - t1)
        parts.add("catalog.validate", t3 - t2)
        parts.add("build + sign + serialise AppRec", t4 - t3)
        totals.append(t4 - t0)
    return totals, parts


def _pipeline(config: Config, store: Store, catalog: SchemaCatalog, signer: Signer) -> Pipeline:
    return Pipeline(
        identity=config.identity,
        store=store,
        catalog=catalog,
        signer=signer,
        engine=RuleEngine(RULES),
        max_message_bytes=config.validation.max_message_bytes,
    )


def measure_handle(
    samples: Sequence[Sample],
    directory: Path,
    config: Config,
    catalog: SchemaCatalog,
    signer: Signer,
) -> list[float]:
    """``Pipeline.handle`` alone (with its SQLite commit), on a fresh store: no files."""
    directory.mkdir(parents=True)
    store = Store(directory / "gateway.sqlite3")
    pipeline = _pipeline(config, store, catalog, signer)
    totals: list[float] = []
    try:
        for i, sample in enumerate(samples):
            t0 = time.perf_counter()
            result = pipeline.handle(
                sample.raw, source="spool", source_ref=f"handle-{i}", source_name=sample.name
            )
            totals.append(time.perf_counter() - t0)
            if result.outcome is not Outcome.ACCEPTED:
                raise RuntimeError(f"{sample.name}: {result.outcome} ({result.detail})")
    finally:
        store.close()
    return totals


def measure_stages(
    samples: Sequence[Sample],
    directory: Path,
    config: Config,
    catalog: SchemaCatalog,
    signer: Signer,
) -> Timings:
    """The daemon's per-message work (``Daemon._process``), one timed step at a time.

    Same calls in the same order, on a fresh spool, store and outbox, in this thread (no event
    loop, no worker handoff). ``Pipeline.handle`` is unrolled here to time each stage; keep it in
    step with gateway/pipeline.py.
    """
    spool = Spool(
        SpoolConfig(
            directory=directory / "spool",
            poll_interval=1.0,
            max_recoveries=3,
            settle_seconds=0.0,
        )
    )
    store = Store(directory / "gateway.sqlite3")
    outbox = FileOutbox(store, directory / "outbox")
    pipeline = _pipeline(config, store, catalog, signer)
    for sample in samples:
        (spool.config.incoming / sample.name).write_bytes(sample.raw)
    parts = Timings()
    try:
        while True:
            t = time.perf_counter()
            batch = spool.claim(BATCH)
            if not batch:
                break
            per_item = (time.perf_counter() - t) / len(batch)
            for item in batch:
                parts.add("spool.claim (batched, per message)", per_item)
                t = time.perf_counter()
                store.received_by_ref(item.source_ref)
                t, t0 = time.perf_counter(), t
                parts.add("store.received_by_ref", t - t0)
                raw = item.path.read_bytes()
                work = Work(
                    raw=raw,
                    source="spool",
                    source_ref=item.source_ref,
                    source_name=item.original_name,
                    received_at=pipeline.clock(),
                    sha256=hashlib.sha256(raw).hexdigest(),
                )
                t, t0 = time.perf_counter(), t
                parts.add("read file + sha256", t - t0)
                for stage in STAGES:
                    stage(pipeline, work)
                    t, t0 = time.perf_counter(), t
                    parts.add(f"pipeline.{stage.__name__}", t - t0)
                    if work.finished is not None:
                        raise RuntimeError(f"{item.original_name}: finished early")
                outcome = pipeline._decide(work)
                t, t0 = time.perf_counter(), t
                parts.add("pipeline._decide (ack + signed AppRec)", t - t0)
                if outcome is not Outcome.ACCEPTED:
                    raise RuntimeError(f"{item.original_name}: {outcome}")
                store.commit_intake(
                    ReceivedRecord(
                        received_at=work.received_at,
                        source=work.source,
                        source_ref=work.source_ref,
                        raw=work.raw,
                        sha256=work.sha256,
                        outcome=outcome,
                    ),
                    pipeline._message_record(work, outcome),
                    work.evaluation,
                    work.replies,
                )
                t, t0 = time.perf_counter(), t
                parts.add("store.commit_intake (SQLite, synchronous=FULL)", t - t0)
                outbox.flush()
                t, t0 = time.perf_counter(), t
                parts.add("outbox.flush (2 files + fsyncs, mark_delivered)", t - t0)
                spool.done(item)
                t, t0 = time.perf_counter(), t
                parts.add("spool.done (rename + dir fsync)", t - t0)
    finally:
        store.close()
    return parts


def measure_fsync(directory: Path) -> list[float]:
    """One durable small-file write as the outbox does it: write, fsync, rename, fsync dir."""
    directory.mkdir(parents=True)
    body = os.urandom(4096)
    times: list[float] = []
    for i in range(FSYNC_PROBES):
        t0 = time.perf_counter()
        tmp = directory / f".probe-{i}.tmp"
        with tmp.open("wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(directory / f"probe-{i}")
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        times.append(time.perf_counter() - t0)
    return times


# --- 5. report ------------------------------------------------------------------------------------


def _row(label: str, value: str, note: str = "") -> str:
    return f"  {label:<52} {value:>14}  {note}".rstrip()


def _dist(values: Sequence[float]) -> dict[str, float]:
    return {
        "mean_ms": ms(mean(values)),
        "p50_ms": ms(percentile(values, 50)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values)) if values else math.nan,
    }


def run(args: argparse.Namespace) -> int:
    messages: int = args.messages
    bills: int = args.bills
    if messages < 1 or bills < 1:
        raise SystemExit("--messages and --bills must be at least 1")
    wall_started = time.perf_counter()
    if args.keep is not None:
        root = Path(args.keep).resolve()
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"--keep {root}: directory is not empty")
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="gateway-spool-bench-"))
    try:
        return _run_in(root, args, messages, bills, wall_started)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"kept everything under {root}")


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
    rss_before_daemon = peak_rss_mib()

    daemon = run_the_daemon(config, messages, profile=args.profile)
    rss_after_daemon = peak_rss_mib()
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
    floor_per_message = mean(floor_totals)
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
        "latency_claim_to_apprec_file": _dist(lat.claim_to_apprec_file),
        "latency_claim_to_delivered_at": _dist(lat.claim_to_delivered),
        "queue_wait_in_batch": _dist(lat.queue_wait),
        "in_hand_received_to_delivered": _dist(lat.in_hand),
        "between_messages": _dist(lat.between),
        "apprec_mtime_lag_behind_delivered_at": _dist(lat.mtime_lag),
        "peak_rss_mib_before_daemon": rss_before_daemon,
        "peak_rss_mib_after_daemon": rss_after_daemon,
        "peak_rss_mib": peak_rss_mib(),
        "floor": {
            **_dist(floor_totals),
            "messages_per_second": 1 / floor_per_message,
            "parts_mean_ms": floor_parts.mean_ms(),
        },
        "floor_over_measured": floor_per_message / per_message,
        "overhead_x": per_message / floor_per_message,
        "pipeline_handle_only": {
            **_dist(handle_totals),
            "messages_per_second": 1 / handle_per_message,
        },
        "stages_mean_ms": stage_ms,
        "stages_sum_ms": stages_sum_ms,
        "daemon_minus_stages_ms": ms(per_message) - stages_sum_ms,
        "durable_file_write": _dist(fsync_times),
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
    print("BENCH_JSON " + json.dumps(_json_safe(results), sort_keys=True), flush=True)
    return 0 if not problems else 1


def print_table(r: dict[str, Any]) -> None:
    def d(key: str) -> str:
        v = r[key]
        return f"p50 {v['p50_ms']:.1f} / p99 {v['p99_ms']:.1f} ms"

    lines = [
        f"gateway spool benchmark: {r['messages']} messages x {r['bills_per_message']} bills "
        f"({r['message_bytes_mean'] / 1024:.1f} KiB each), seed {r['seed']}",
        "",
        "end to end (asyncio.run(run_daemon(config, once=True)))",
        _row(
            "daemon run",
            f"{r['daemon_seconds']:.2f} s",
            f"startup {r['daemon_startup_seconds'] * 1000:.0f} ms",
        ),
        _row(
            "messages/s",
            f"{r['messages_per_second']:.1f}",
            f"{r['messages_per_second_window']:.1f} first claim -> last AppRec",
        ),
        _row("bills/s", f"{r['bills_per_second']:.1f}"),
        _row("per message", f"{r['per_message_ms']:.2f} ms"),
        _row(
            "  CPU per message (user + system, all threads)",
            f"{r['daemon_cpu_per_message_ms']:.2f} ms",
            f"busy {r['daemon_cpu_busy_fraction']:.0%} of the run; "
            f"system {r['daemon_cpu_system_seconds']:.1f} of "
            f"{r['daemon_cpu_user_seconds'] + r['daemon_cpu_system_seconds']:.1f} s",
        ),
        _row(
            "latency claim -> AppRec file (mtime)",
            f"{r['latency_claim_to_apprec_file']['p50_ms']:.0f} ms",
            f"p50; p99 {r['latency_claim_to_apprec_file']['p99_ms']:.0f} ms",
        ),
        _row("  cross-check: claim -> replies.delivered_at", d("latency_claim_to_delivered_at")),
        _row("  of which waiting behind the claimed batch", d("queue_wait_in_batch")),
        _row(
            "  of which in hand (received_at -> delivered_at)", d("in_hand_received_to_delivered")
        ),
        _row("  between messages (done, handoff, next read)", d("between_messages")),
        _row("  AppRec mtime lags delivered_at by", d("apprec_mtime_lag_behind_delivered_at")),
        _row(
            "peak RSS",
            f"{r['peak_rss_mib']:.0f} MiB",
            f"{r['peak_rss_mib_after_daemon']:.0f} after the daemon, "
            f"{r['peak_rss_mib_before_daemon']:.0f} before",
        ),
        "",
        f"floor on {r['sample']} of the messages (unwrap + parse + validate + signed AppRec)",
        _row(
            "floor per message",
            f"{r['floor']['mean_ms']:.2f} ms",
            f"{r['floor']['messages_per_second']:.0f} messages/s",
        ),
    ]
    lines += [_row(f"  {k}", f"{v:.3f} ms") for k, v in r["floor"]["parts_mean_ms"].items()]
    lines += [
        _row(
            "floor / measured",
            f"{r['floor_over_measured']:.3f}",
            f"overhead x{r['overhead_x']:.1f}",
        ),
        "",
        "where the measured time goes (same sample, fresh store, this thread)",
        _row(
            "Pipeline.handle alone (incl. SQLite commit)",
            f"{r['pipeline_handle_only']['mean_ms']:.2f} ms",
            f"{r['pipeline_handle_only']['messages_per_second']:.0f} messages/s",
        ),
    ]
    lines += [_row(f"  {k}", f"{v:.3f} ms") for k, v in r["stages_mean_ms"].items()]
    lines += [
        _row("  sum of the steps", f"{r['stages_sum_ms']:.2f} ms"),
        _row(
            "  daemon per message minus the steps",
            f"{r['daemon_minus_stages_ms']:.2f} ms",
            "(event loop, worker handoff, logging, bigger DB)",
        ),
        _row("one durable 4 KiB file write on this disk", d("durable_file_write")),
        "",
        "correctness",
        _row("AppRec files / Acknowledgment files", f"{r['apprec_files']} / {r['ack_files']}"),
        _row("store counts", json.dumps(r["store_counts"], sort_keys=True)),
        _row("result", "OK" if r["correct"] else "WRONG", "; ".join(r["problems"])),
        _row(
            "whole benchmark",
            f"{r['total_seconds']:.1f} s",
            f"generation {r['generation_seconds']:.1f} s",
        ),
    ]
    print("\n".join(lines), flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.spool_bench", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
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
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        default=None,
        help="work in DIR (new or empty) and keep spool, outbox and database afterwards",
    )
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
