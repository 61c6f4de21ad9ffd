"""The spool benchmark's daemon run, and what the daemon left behind.

``run_the_daemon`` runs ``asyncio.run(run_daemon(config, once=True))`` in this process, with the
process's CPU time over the run (all threads) and, on request, a cProfile of the pipeline worker.
``observe`` then reads the daemon's traces without touching gateway code: the claim time encoded
in each ``processed/`` name, each AppRec file's mtime, and the database's ``received_at`` and
``replies.delivered_at``; ``latencies`` derives per-message latency and a queue / in-hand split.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import itertools
import math
import os
import pstats
import resource
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench.common import say
from gateway.config import Config
from gateway.daemon import run_daemon
from gateway.receipts.apprec import APPREC_NS
from gateway.security.xmldsig import Signer
from gateway.store import Store
from gateway.testing.messages import open_reply

DAEMON_PROGRESS_SECONDS = 5.0


# --- the daemon run -------------------------------------------------------------------------------


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


# --- what the daemon left behind -----------------------------------------------------------------


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

    assert config.database.path is not None  # the spool bench runs on SQLite
    uri = f"{config.database.path.resolve().as_uri()}?mode=ro"
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
        seen.store_counts = store.messages.counts()
    finally:
        store.close()

    # Check a few AppRecs properly: the envelope signature over the bare AppRec, status OK.
    for path in sorted(apprec_paths)[:1] + sorted(apprec_paths)[-1:]:
        reply = open_reply(path.read_bytes(), signer.certificate)
        status = None if reply.apprec is None else reply.apprec.find(f"{{{APPREC_NS}}}Status")
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
