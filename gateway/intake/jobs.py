"""The values that travel between the intake's parts: a job to a worker, what a worker makes of
it, and what the writer did with that.

A worker may be another process, so what comes back is plain: the rows to write (tuples of
strings, numbers and bytes, cheap to pickle), the keys its reads touched, and what to report;
``Prepared`` is a named tuple (it unpickles several times faster than a slotted dataclass).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from gateway.ebxml.model import EbxmlMessage
from gateway.intake.conflicts import ExactKey, RangeKey
from gateway.records import Outcome
from gateway.store.intake import IntakeRows

__all__ = [
    "Broken",
    "BrokenKind",
    "Committed",
    "Conflict",
    "Job",
    "Prepared",
    "Refused",
    "Stored",
    "Verdict",
    "WorkerResult",
]


@dataclass(frozen=True, slots=True)
class Job:
    """One received message, to process."""

    raw: bytes
    source: str
    source_ref: str
    source_name: str


#: A stage run as the metrics count it: (stage, outcome, seconds).
StageTime = tuple[str, str, float]


class Prepared(NamedTuple):
    """A message processed, not yet committed: its rows, what its processing read, and what to
    report once it is committed."""

    rows: IntakeRows
    #: The newest received id the reads saw: commits after it may conflict.
    snapshot: int
    read_exact: frozenset[ExactKey]
    read_ranges: frozenset[RangeKey]
    outcome: Outcome
    apprec_status: int | None
    reply_kinds: tuple[str, ...]
    detail: str | None
    #: A trusted MSH signal for one of our messages: matched after the commit.
    signal: EbxmlMessage | None
    signal_at: datetime | None
    stages: tuple[StageTime, ...]
    seconds: float  # processing time in the worker


@dataclass(frozen=True, slots=True)
class Committed:
    """The message's ``source_ref`` is committed already (a crash after its commit)."""

    source_ref: str


class BrokenKind(StrEnum):
    ERROR = "error"  # a bug of ours raised while processing it
    OVER_BUDGET = "over_budget"  # it took longer than its budget: its worker was killed
    WORKER_DIED = "worker_died"  # its worker process ended under it
    STORAGE = "storage"  # the database could not be read: try again later


@dataclass(frozen=True, slots=True)
class Broken:
    """Processing the message did not end with an answer."""

    kind: BrokenKind
    detail: str


WorkerResult = Prepared | Committed | Broken


@dataclass(frozen=True, slots=True)
class Stored:
    """Committed as ``received_id``, its replies as ``reply_ids``."""

    received_id: int
    reply_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Conflict:
    """Not committed: a commit after its snapshot changed what its processing read (or its
    ids are stored already). Process it again."""


@dataclass(frozen=True, slots=True)
class Refused:
    """Not committed: writing its rows failed (``detail``), the rest of the batch was not."""

    detail: str


Verdict = Stored | Committed | Conflict | Refused
