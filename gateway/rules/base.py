"""What a rule is, what it sees and what it says.

A rule is data (id, version, code, Norwegian text, severity, validity dates) plus one small check
function. Adding a rule means a new module with a ``RULE`` value and one line in
``gateway.rules.registry``; the engine never changes.

A check returns ``None`` when the bill (or message) passes, or a mapping of named values when the
rule fires. Those values fill the rule's text template and are stored with the decision, so every
rejection can be explained and replayed later.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from gateway.claims.model import BehandlerKrav, Enkeltregning, MsgHead


class Severity(enum.Enum):
    """What a fired rule does to the claim."""

    REJECT_MESSAGE = "reject_message"  # the whole BehandlerKrav is refused (AppRec status 2)
    REJECT_BILL = "reject_bill"  # this Enkeltregning is avvist; the others go on
    WARNING = "warning"  # a merknad, nothing is refused


class Scope(enum.Enum):
    MESSAGE = "message"
    BILL = "bill"


@dataclass(frozen=True, slots=True)
class StoredBill:
    """A bill already in the store, as history-dependent rules see it."""

    guid: str
    regning_nr: str
    sum_refusjon: Decimal
    takster: tuple[tuple[str, Decimal, int], ...]  # (kode, verdi, antall), sorted
    credited: bool


class ClaimHistory(Protocol):
    """Read-only view of earlier claims, answered by the store."""

    def approved_bill(self, sender_her: str, guid: str) -> StoredBill | None:
        """The approved (godkjent, not itself a credit) bill with this Guid from this sender."""
        ...


@dataclass(frozen=True, slots=True)
class ClaimContext:
    """Everything a rule may look at besides the bill itself."""

    head: MsgHead
    krav: BehandlerKrav
    sender_her: str
    received_at: datetime  # naive Norwegian local time, comparable with DatoTid
    history: ClaimHistory


Facts = Mapping[str, str]
MessageCheck = Callable[[ClaimContext], Facts | None]
BillCheck = Callable[[Enkeltregning, int, ClaimContext], Facts | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """One control rule. ``text`` is a ``str.format`` template filled with the check's facts."""

    id: str
    version: int
    code: str
    text: str
    severity: Severity
    scope: Scope
    valid_from: date
    valid_to: date | None
    check: MessageCheck | BillCheck
    guidance: str = ""  # what the sender should do differently (for payout decisions)

    def in_force(self, on: date) -> bool:
        """Whether the rule applies to a bill treated (or a message received) on ``on``."""
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)

    def explain(self, facts: Facts) -> str:
        """The Norwegian text for this firing; a missing fact leaves its placeholder visible."""
        return self.text.format_map(_KeepMissing(facts))


class _KeepMissing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that fired: stored with the decision and sent to the sender."""

    rule_id: str
    rule_version: int
    code: str
    text: str
    severity: Severity
    bill_index: int | None  # position of the bill in the message, None for message rules
    regning_nr: str | None
    facts: Facts
