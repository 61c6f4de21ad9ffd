"""The spool benchmark's daemon runs: the real ``gateway run`` as a process of its own.

- ``run_once``: a full spool, ``gateway run --once``; wall time, and what the daemon reports
  using as it stops (its ``resources_used`` log line: CPU seconds of the daemon and of its
  worker processes, the batches it committed, the bytes it wrote to storage).
- ``run_latency``: a running daemon (the configuration as given: for the latency goal, the
  shipped defaults) and files dropped at a steady rate; for each, the time from landing in
  ``incoming/`` to its AppRec file appearing in the outbox.
- ``observe``: what a run left behind, checked: replies, store counts, the spool, and the bytes
  stored (the database and the reply files).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import say
from bench.spool_site import Claim, Site, drop

DAEMON_TIMEOUT_SECONDS = 3600.0
STARTED_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Usage:
    """What the daemon reported using (its ``resources_used`` line)."""

    daemon_cpu: float
    writer_cpu: float
    workers_cpu: float
    batches: int
    batched: int
    bytes_written: int | None

    @property
    def cpu(self) -> float:
        return self.daemon_cpu + self.workers_cpu


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    exit_code: int
    usage: Usage
    log: Path


def _daemon(site: Site, *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(site.config_path), *args],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


def usage_of(log: Path) -> Usage:
    """The daemon's last ``resources_used`` line in ``log``."""
    found: dict[str, Any] | None = None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"resources_used"' in line:
            found = json.loads(line)
    if found is None:
        raise RuntimeError(f"the daemon did not report its resources (see {log})")
    return Usage(
        daemon_cpu=float(found["daemon_seconds"]),
        writer_cpu=float(found["writer_seconds"]),
        workers_cpu=float(found["workers_seconds"]),
        batches=int(found["batches"]),
        batched=int(found["batched"]),
        bytes_written=found.get("bytes_written"),
    )


def run_once(site: Site, log: Path) -> Run:
    """``gateway run --once`` on the site's spool, to the end."""
    started = time.perf_counter()
    daemon = _daemon(site, "--once", log=log)
    code = daemon.wait(timeout=DAEMON_TIMEOUT_SECONDS)
    return Run(time.perf_counter() - started, code, usage_of(log), log)


# --- latency ------------------------------------------------------------------------------------


class AppearanceClock(threading.Thread):
    """Notes when each AppRec file first appears in the outbox (polled every ``every`` s)."""

    def __init__(self, outbox: Path, every: float = 0.005) -> None:
        super().__init__(name="bench-outbox", daemon=True)
        self.outbox = outbox
        self.every = every
        self.seen: dict[str, float] = {}  # claim stem -> epoch seconds
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.is_set():
            now = time.time()
            try:
                with os.scandir(self.outbox) as entries:
                    for entry in entries:
                        name = entry.name
                        if ".apprec." in name and not name.startswith("."):  # not a temp file
                            self.seen.setdefault(name.split(".apprec.", 1)[0], now)
            except FileNotFoundError:
                pass
            time.sleep(self.every)


@dataclass(slots=True)
class LatencyRun:
    rate: float  # messages per second dropped
    landed: dict[str, float] = field(default_factory=dict)  # stem -> epoch seconds
    answered: dict[str, float] = field(default_factory=dict)
    usage: Usage | None = None

    @property
    def latencies(self) -> list[float]:
        return [self.answered[s] - t for s, t in self.landed.items() if s in self.answered]


def run_latency(site: Site, claims: list[Claim], rate: float, log: Path) -> LatencyRun:
    """Start the daemon, drop ``claims`` at ``rate`` per second, wait for every AppRec."""
    result = LatencyRun(rate)
    clock = AppearanceClock(site.outbox)
    clock.start()
    daemon = _daemon(site, log=log)
    try:
        _wait_started(log, daemon)
        next_at = time.perf_counter()
        for claim in claims:
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += 1 / rate
            result.landed[claim.name.rsplit(".", 1)[0]] = drop(site.incoming, claim)
        deadline = time.monotonic() + 120 + len(claims) / rate
        while len(clock.seen) < len(claims) and time.monotonic() < deadline:
            if daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited with {daemon.returncode} (see {log})")
            time.sleep(0.05)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        clock.finished.set()
        clock.join()
    result.answered = dict(clock.seen)
    result.usage = usage_of(log)
    return result


def _wait_started(log: Path, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTED_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode} (see {log})")
        if log.exists() and '"event": "started"' in log.read_text(errors="replace"):
            time.sleep(1.0)  # the workers build their pipelines meanwhile
            return
        time.sleep(0.05)
    raise RuntimeError(f"the daemon did not start within {STARTED_TIMEOUT_SECONDS} s")


# --- what a run left behind -----------------------------------------------------------------------


@dataclass(slots=True)
class Observed:
    apprec_files: int = 0
    ack_files: int = 0
    reply_bytes: int = 0
    database_bytes: int = 0
    processed_bytes: int = 0
    left_in_spool: int = 0
    processed_files: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    pending_replies: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def stored_bytes(self) -> int:
        """What the gateway keeps of the messages: the database's growth (with its WAL), the
        reply files, and the spool files in ``processed/``."""
        return self.database_bytes + self.reply_bytes + self.processed_bytes


def observe(site: Site, expected: int, database_before: int) -> Observed:
    seen = Observed()
    with os.scandir(site.outbox) as entries:
        for entry in entries:
            if ".apprec." in entry.name:
                seen.apprec_files += 1
            elif ".acknowledgment." in entry.name:
                seen.ack_files += 1
            seen.reply_bytes += entry.stat().st_size
    spool = site.root / "spool"
    for name in ("incoming", "work", "bad"):
        seen.left_in_spool += sum(1 for _ in (spool / name).iterdir())
    with os.scandir(spool / "processed") as entries:
        for entry in entries:
            seen.processed_files += 1
            seen.processed_bytes += entry.stat().st_size
    for suffix in ("", "-wal"):
        path = Path(f"{site.database}{suffix}")
        seen.database_bytes += path.stat().st_size if path.exists() else 0
    seen.database_bytes -= database_before
    uri = f"{site.database.resolve().as_uri()}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        seen.outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM received GROUP BY outcome"))
        seen.pending_replies = db.execute(
            "SELECT COUNT(*) FROM replies WHERE state = 'pending'"
        ).fetchone()[0]
    db.close()
    if seen.apprec_files != expected or seen.ack_files != expected:
        seen.problems.append(f"{seen.apprec_files} AppRecs, {seen.ack_files} acks for {expected}")
    if seen.left_in_spool or seen.processed_files != expected:
        seen.problems.append(f"{seen.processed_files} processed, {seen.left_in_spool} left")
    # Every claim decided by the rules (a claim whose every bill a rule refuses is decided too).
    decided = sum(seen.outcomes.get(o, 0) for o in ("accepted", "partially_accepted", "rejected"))
    if decided != expected or seen.pending_replies:
        seen.problems.append(f"outcomes {seen.outcomes}, {seen.pending_replies} pending")
    return seen


def database_size(site: Site) -> int:
    return sum(
        Path(f"{site.database}{s}").stat().st_size
        for s in ("", "-wal")
        if Path(f"{site.database}{s}").exists()
    )


def progress(what: str, seconds: float) -> None:
    say(f"  {what} in {seconds:.1f} s")
