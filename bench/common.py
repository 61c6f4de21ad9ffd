"""What the benchmarks share: statistics, timing and CPU, the work directory, claims to send, and
the report (a table of rows, then one ``BENCH_JSON {...}`` line).

Every benchmark is a measurement, not a test: nothing here fails because something is slow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import resource
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from gateway.claims.model import BehandlerKrav, MsgHead, Organisation
from gateway.testing.claims import Practitioner, make_claim

#: The practitioner kinds the benchmarks mix, in the order their generators draw them.
PRACTITIONERS: tuple[Practitioner, ...] = ("tannlege", "lege", "psykolog", "lab")


# --- statistics -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def ms(seconds: float) -> float:
    return seconds * 1000.0


def dist(values: Sequence[float]) -> dict[str, float]:
    """Mean, p50, p99 and max of ``values`` (seconds), in milliseconds."""
    return {
        "mean_ms": ms(mean(values)),
        "p50_ms": ms(percentile(values, 50)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values)) if values else math.nan,
    }


@dataclass(slots=True)
class Timings:
    """Seconds per message, per named part, in insertion order."""

    parts: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.parts.setdefault(name, []).append(seconds)

    def mean_ms(self) -> dict[str, float]:
        return {name: ms(mean(values)) for name, values in self.parts.items()}


# --- CPU and memory -------------------------------------------------------------------------------


def own_peak_rss_mib() -> float:
    """This process's peak resident set size, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, all threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command: state is field 3 of stat(5); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """``cpu_seconds`` of process ``pid`` and every live descendant (the daemon, its
    forkserver and worker processes)."""
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            total += cpu_seconds(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def peak_rss_mib(pid: int) -> float:
    """The peak resident set size (``VmHWM``) of process ``pid``, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


# --- the command line ----------------------------------------------------------------------------


def parser_for(module: str, doc: str | None) -> argparse.ArgumentParser:
    """``python -m <module>``'s parser, described by the first paragraph of its docstring."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}", description=doc.split("\n\n")[0] if doc else ""
    )


def add_seed_and_keep(parser: argparse.ArgumentParser, *, seed: int, kept: str) -> None:
    """``--seed`` and ``--keep DIR`` (see ``work_directory``); ``kept`` names what stays."""
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        default=None,
        help=f"work in DIR (new or empty) and keep {kept} afterwards",
    )


# --- the work directory ---------------------------------------------------------------------------


@contextlib.contextmanager
def work_directory(keep: str | None, prefix: str) -> Iterator[Path]:
    """A fresh temporary directory, removed afterwards; or ``keep`` (new or empty), kept."""
    if keep is None:
        root = Path(tempfile.mkdtemp(prefix=prefix))
    else:
        root = Path(keep).resolve()
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"--keep {root}: directory is not empty")
        root.mkdir(parents=True, exist_ok=True)
    try:
        yield root
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"kept everything under {root}")


# --- claims ---------------------------------------------------------------------------------------


def past_claim(
    rng: random.Random,
    *,
    today: date,
    bills: int,
    sender: Organisation,
    receiver: Organisation,
    practitioner: Practitioner | None = None,
) -> tuple[MsgHead, BehandlerKrav]:
    """A claim of ``bills`` bills treated weeks to months before ``today``, by ``practitioner``
    (None: one drawn at random).

    Bills follow each other 15-60 minutes apart in weekday office hours: at most ~0.2 days per
    bill. Starting at least this far back keeps every DatoTid (and GenDate) in the past, so
    rule 766 does not fire.
    """
    days_back = 14 + bills // 4
    day = today - timedelta(days=rng.randint(days_back, days_back + 90))
    start = datetime.combine(day, clock_time(8, 0)) + timedelta(minutes=15 * rng.randint(0, 24))
    return make_claim(
        rng=rng,
        practitioner=rng.choice(PRACTITIONERS) if practitioner is None else practitioner,
        bills=bills,
        sender=sender,
        receiver=receiver,
        start=start,
    )


# --- the report -----------------------------------------------------------------------------------


def say(text: str) -> None:
    """Progress, on stderr (stdout carries the table and the JSON line)."""
    print(text, file=sys.stderr, flush=True)


def row(label: str, value: str, note: str = "") -> str:
    """One line of a benchmark's table."""
    return f"  {label:<52} {value:>14}  {note}".rstrip()


def p50_p99(entry: dict[str, float], decimals: int) -> str:
    """``p50 … / p99 … ms`` of a ``dist`` entry."""
    return f"p50 {entry['p50_ms']:.{decimals}f} / p99 {entry['p99_ms']:.{decimals}f} ms"


def floor_rows(results: dict[str, Any]) -> list[str]:
    """The floor's rows: per message, its parts, and floor / measured."""
    floor = results["floor"]
    lines = [
        row(
            "floor per message",
            f"{floor['mean_ms']:.2f} ms",
            f"{floor['messages_per_second']:.0f} messages/s",
        )
    ]
    lines += [row(f"  {k}", f"{v:.3f} ms") for k, v in floor["parts_mean_ms"].items()]
    lines.append(
        row(
            "floor / measured",
            f"{results['floor_over_measured']:.3f}",
            f"overhead x{results['overhead_x']:.1f}",
        )
    )
    return lines


def floor_results(
    totals: Sequence[float], parts: Timings, measured_per_message: float
) -> dict[str, Any]:
    """The floor's numbers beside the measured time per message (seconds)."""
    floor_per_message = mean(totals)
    return {
        "floor": {
            **dist(totals),
            "messages_per_second": 1 / floor_per_message,
            "parts_mean_ms": parts.mean_ms(),
        },
        "floor_over_measured": floor_per_message / measured_per_message,
        "overhead_x": measured_per_message / floor_per_message,
    }


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as null and floats rounded to 4 places."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def print_bench_json(results: dict[str, Any]) -> None:
    """The one machine-readable line of a run."""
    print("BENCH_JSON " + json.dumps(json_safe(results), sort_keys=True), flush=True)
