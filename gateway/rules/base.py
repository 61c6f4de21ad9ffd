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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from gateway.claims.model import BehandlerKrav, Enkeltregning, MsgHead
from gateway.practices.model import EMPTY_REGISTER, Practice, PracticeRegister
from gateway.tariffs.model import EMPTY_BOOK, TariffBook


class Severity(enum.Enum):
    """What a fired rule does to the claim."""

    REJECT_MESSAGE = "reject_message"  # the whole BehandlerKrav is refused (AppRec status 2)
    REJECT_BILL = "reject_bill"  # this Enkeltregning is avvist; the others go on
    ADJUST = "adjust"  # the bill is approved with the amount the rule sets (Hit.approved_amount)
    MANUAL = "manual"  # approved for now, flagged for a case worker (kontrolleres manuelt)
    WARNING = "warning"  # a merknad, nothing is refused


class Scope(enum.Enum):
    MESSAGE = "message"
    BILL = "bill"


@dataclass(frozen=True, slots=True)
class HistoricBill:
    """An approved, uncredited bill in the store, as time and frequency rules see it."""

    guid: str
    regning_nr: str
    sender_her: str
    practitioner_id: str  # HPR number of the practitioner, else the sender's HER id
    patient_id: str
    dato_tid: datetime
    takster: tuple[tuple[str, int], ...]  # (kode, antall)


@dataclass(frozen=True, slots=True)
class StoredBill:
    """A bill already in the store, as history-dependent rules see it."""

    guid: str
    regning_nr: str
    sum_refusjon: Decimal
    takster: tuple[tuple[str, Decimal, int], ...]  # (kode, verdi, antall), sorted
    credited: bool


class ClaimHistory(Protocol):
    """Read-only view of earlier claims, answered by the store (indexed queries)."""

    def approved_bill(self, sender_her: str, guid: str) -> StoredBill | None:
        """The approved (godkjent, not itself a credit) bill with this Guid from this sender."""
        ...

    def practitioner_bills_between(
        self, practitioner_id: str, start: datetime, end: datetime
    ) -> Sequence[HistoricBill]:
        """Approved, uncredited bills of one practitioner starting in ``[start, end)``."""
        ...

    def patient_bills_between(
        self, patient_id: str, start: datetime, end: datetime
    ) -> Sequence[HistoricBill]:
        """Approved, uncredited bills of one patient (any practitioner) in ``[start, end)``."""
        ...

    def patient_code_count(
        self, patient_id: str, codes: frozenset[str], start: datetime, end: datetime
    ) -> int:
        """Sum of ``antall`` of the given takst codes (lower-case) on approved, uncredited
        bills of one patient, any practitioner, with DatoTid in ``[start, end)``."""
        ...


class EarlierInMessage(Protocol):
    """The bills of the same message the engine has approved so far (in message order)."""

    def approved(self) -> Sequence[Enkeltregning]: ...


class _NothingEarlier:
    def approved(self) -> Sequence[Enkeltregning]:
        return ()


@dataclass(frozen=True, slots=True)
class ClaimContext:
    """Everything a rule may look at besides the bill itself."""

    head: MsgHead
    krav: BehandlerKrav
    sender_her: str
    received_at: datetime  # naive Norwegian local time, comparable with DatoTid
    history: ClaimHistory
    tariffs: TariffBook = EMPTY_BOOK
    practitioner: str | None = None  # practitioner type (PRACTITIONER_TYPES), if known
    practitioner_id: str = ""  # HPR number of the practitioner, else the sender's HER id
    earlier: EarlierInMessage = field(default_factory=_NothingEarlier)
    #: The practice register in force (empty: none imported; the register rules stand aside).
    practices: PracticeRegister = EMPTY_REGISTER
    #: The sender's register row as of the day of receipt (``gateway.practices.senders``);
    #: rules about a bill's treatment date look it up with ``practices.on``.
    practice: Practice | None = None


Facts = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule fired. ``facts`` fill its text and are stored; an ADJUST rule sets the amount."""

    facts: Facts
    approved_amount: Decimal | None = None


Outcome = Facts | Hit | None
MessageCheck = Callable[[ClaimContext], Outcome]
BillCheck = Callable[[Enkeltregning, int, ClaimContext], Outcome]


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
    #: Practitioner types the rule applies to; None = all. Used to index dispatch.
    practitioners: frozenset[str] | None = None
    #: Takst/NLK codes (lower-case) a bill must carry for the rule to run; None = every bill.
    codes: frozenset[str] | None = None
    #: Where the rule comes from (catalogue id, source), for ``gateway rules list``.
    basis: str = ""

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
    approved_amount: Decimal | None = None  # set by ADJUST rules
