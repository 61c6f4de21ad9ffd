"""The values of one received message's run through the pipeline: what came in, how the stages
ended it, what its transaction commits and what is reported; and the observer entered around
each stage run (the daemon counts and times them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.claims.message_types import Claim
from gateway.ebxml.model import EbxmlMessage, MessageHeader
from gateway.ebxml.signals import MessageStatus, StatusRequest
from gateway.ebxml.unwrap import whole_size
from gateway.receipts.answers import Answer
from gateway.receipts.understood import Understood
from gateway.records import MessageRecord, Outcome, ReceivedRecord
from gateway.rules.engine import Evaluation

__all__ = [
    "Decided",
    "Duplicate",
    "Ending",
    "Intake",
    "MshRequest",
    "Processed",
    "Result",
    "Signal",
    "StageObserver",
    "StageRun",
    "unobserved",
]


class StageRun(Protocol):
    def finished(self) -> None:
        """The stage ended the run without an error (a duplicate, an incoming signal)."""


#: Wraps each stage run: ``observe(name)`` is entered around it (the daemon counts and times).
StageObserver = Callable[[str], AbstractContextManager[StageRun]]


@dataclass(frozen=True, slots=True)
class Intake:
    """One received message, as it came."""

    raw: bytes
    source: str
    source_ref: str
    source_name: str
    received_at: datetime  # UTC
    sha256: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A message we processed before: answered with the replies it got then."""

    prior_id: int
    new_message: bool  # the same claim in a new ebXML message (acknowledged anew)


@dataclass(frozen=True, slots=True)
class Signal:
    """An MSH signal for one of our messages: recorded, never answered."""

    message: EbxmlMessage
    trusted: bool


@dataclass(frozen=True, slots=True)
class Decided:
    """A claim that went through the rules."""

    claim: Claim
    evaluation: Evaluation


@dataclass(frozen=True, slots=True)
class MshRequest:
    """A partner's Ping or StatusRequest (ebMS 2.0 §7-8): answered with a Pong or, with the
    asked-about message's ``status`` and receipt time, a StatusResponse."""

    header: MessageHeader
    status_request: StatusRequest | None = None  # None: a Ping
    status: MessageStatus = MessageStatus.NOT_RECOGNIZED
    received_at: datetime | None = None


Ending = Duplicate | Signal | Decided | MshRequest


@dataclass(frozen=True, slots=True)
class Processed:
    """One message processed, not yet committed: everything its transaction writes."""

    intake: Intake
    known: Understood
    answer: Answer
    ending: Ending | None  # None: a stage refused it (``detail`` says why)
    detail: str | None

    @property
    def evaluation(self) -> Evaluation | None:
        return self.ending.evaluation if isinstance(self.ending, Decided) else None

    def received(self) -> ReceivedRecord:
        """The received row: the original bytes and how they were answered."""
        intake = self.intake
        return ReceivedRecord(
            received_at=intake.received_at,
            source=intake.source,
            source_ref=intake.source_ref,
            raw=intake.raw,
            sha256=intake.sha256,
            outcome=self.answer.outcome,
            detail=self.detail,
            duplicate_of=self.answer.duplicate_of,
            signature_references=self.known.signature_references,
            size=whole_size(intake.raw),
        )

    def result(self, received_id: int) -> Result:
        answer = self.answer
        return Result(
            received_id=received_id,
            outcome=answer.outcome,
            apprec_status=answer.apprec_status,
            replies=tuple(r.kind for r in answer.replies),
            detail=self.detail,
        )

    def message(self) -> MessageRecord | None:
        """The ids to remember, if any."""
        evaluation = self.evaluation
        return self.known.record(
            self.answer.outcome,
            apprec_status=self.answer.apprec_status,
            ruleset_version=evaluation.ruleset_version if evaluation else None,
        )


@dataclass(frozen=True, slots=True)
class Result:
    """What ``Pipeline.handle`` did, for logs and tests."""

    received_id: int
    outcome: Outcome
    apprec_status: int | None
    replies: tuple[str, ...]  # kinds, in order
    detail: str | None


@contextmanager
def unobserved(name: str) -> Iterator[StageRun]:
    """The observer when nobody counts: the stage just runs."""
    yield _NOT_COUNTED


class _NotCounted:
    def finished(self) -> None:
        pass


_NOT_COUNTED = _NotCounted()
