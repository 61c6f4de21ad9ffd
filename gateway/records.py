"""The records the core passes around: what was received, decided, answered and overridden.

They belong to no storage engine: the pipeline builds them, the store persists them, the outbox,
case work, payout and service read them; the web console's users, sessions, audit log and views
are at the end. Amounts are whole øre (``to_ore``/``from_ore``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


class Outcome(enum.Enum):
    """What became of a received message."""

    ACCEPTED = "accepted"  # AppRec status 1
    PARTIALLY_ACCEPTED = "partially_accepted"  # AppRec status 3
    REJECTED = "rejected"  # AppRec status 2
    EBXML_ERROR = "ebxml_error"  # answered with an ebXML MessageError
    DUPLICATE = "duplicate"  # answered again with the stored replies
    SIGNAL = "signal"  # an ebMS signal: Ack/MessageError for ours (recorded, not answered),
    # or a partner's Ping/StatusRequest (answered with a Pong/StatusResponse)
    FAILED = "failed"  # our own error; kept for an operator, not answered


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    received_at: datetime  # UTC
    source: str
    source_ref: str
    raw: bytes
    sha256: str
    outcome: Outcome
    detail: str | None = None
    duplicate_of: int | None = None
    #: The ``ds:Reference`` copies of its verified ebXML signature, when it asked for a signed
    #: acknowledgment (``gateway.ebxml.signals.signature_references``); kept as evidence of
    #: what our acknowledgment acknowledged.
    signature_references: tuple[bytes, ...] = ()
    #: The size of the whole message when ``raw`` is only its first bytes (refused as too
    #: large, ``gateway.ebxml.unwrap.Truncated``); None: ``len(raw)``.
    size: int | None = None


@dataclass(frozen=True, slots=True)
class MessageRecord:
    cpa_id: str | None = None
    ebxml_message_id: str | None = None
    conversation_id: str | None = None
    from_her: str | None = None
    to_her: str | None = None
    service: str | None = None
    action: str | None = None
    content_sha256: str | None = None
    payload_sha256: str | None = None
    msg_id: str | None = None
    msg_type: str | None = None
    sender_her: str | None = None
    sender_name: str | None = None
    gen_date: datetime | None = None
    apprec_status: int | None = None
    ruleset_version: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    kind: str
    recipient: str
    filename: str
    body: bytes
    ebxml_message_id: str | None = None
    ref_to_message_id: str | None = None
    #: Sent with ebXML AckRequested: tracked until the partner acknowledges it.
    awaits_ack: bool = False


@dataclass(frozen=True, slots=True)
class PendingReply:
    """A reply due for delivery."""

    id: int
    filename: str
    body: bytes
    recipient: str = ""  # a mail address, or 'HER:<id>' (resolved by the outbox)
    kind: str = ""
    ebxml_message_id: str | None = None
    attempts: int = 0  # failed delivery attempts since it was (re)queued


@dataclass(frozen=True, slots=True)
class ReplySummary:
    """A ``replies`` row without its body, for operators, metrics and the resend task."""

    id: int
    received_id: int | None
    kind: str
    ebxml_message_id: str | None
    ref_to_message_id: str | None
    recipient: str
    filename: str
    created_at: datetime
    state: str  # pending | delivered | dead | discarded
    delivered_at: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sends: int
    ack_state: str | None  # awaiting | acknowledged | error | expired
    ack_received_id: int | None
    ack_at: datetime | None
    expires_at: datetime | None
    size: int


@dataclass(frozen=True, slots=True)
class SignalMatch:
    """One of our replies an incoming Acknowledgment/MessageError refers to."""

    reply_id: int
    reply_kind: str
    previous_ack_state: str | None
    ack_state: str
    changed: bool  # False: an earlier signal had settled it already


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    """Counts of the outbox for metrics and health checks."""

    states: dict[str, int]
    ack_states: dict[str, int]  # discarded rows left out
    oldest_pending_seconds: float  # 0 when nothing is pending

    @property
    def pending(self) -> int:
        return self.states.get("pending", 0)

    @property
    def dead(self) -> int:
        return self.states.get("dead", 0)

    @property
    def awaiting_ack(self) -> int:
        return self.ack_states.get("awaiting", 0)


@dataclass(frozen=True, slots=True)
class ReceivedSummary:
    """A received row with the ids of its message (no bytes, no national ids)."""

    id: int
    received_at: datetime
    source: str
    source_ref: str
    sha256: str
    size: int
    outcome: str
    detail: str | None
    duplicate_of: int | None
    ebxml_message_id: str | None
    conversation_id: str | None
    cpa_id: str | None
    from_her: str | None
    to_her: str | None
    service: str | None
    action: str | None
    msg_id: str | None
    msg_type: str | None
    sender_her: str | None
    sender_name: str | None
    apprec_status: int | None
    bills: int


@dataclass(frozen=True, slots=True)
class PriorMessage:
    """An earlier message with the same idempotency key."""

    received_id: int
    content_sha256: str | None
    payload_sha256: str | None
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class ReceivedStatus:
    """What we know of a message a partner asks about (an ebMS StatusRequest)."""

    received_id: int
    received_at: datetime  # UTC
    outcome: Outcome
    cpa_id: str | None
    from_her: str | None  # the ebXML From party that sent it


@dataclass(frozen=True, slots=True)
class StoredReply:
    kind: str
    recipient: str
    filename: str
    body: bytes
    ebxml_message_id: str | None
    ref_to_message_id: str | None


def to_ore(amount: Decimal) -> int:
    """Kroner to whole øre, exactly (amounts are validated to two decimals)."""
    return int((amount * 100).to_integral_value())


def from_ore(ore: int) -> Decimal:
    return (Decimal(ore) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True, repr=False)
class CaseBill:
    """A stored bill as a case worker sees it: the decision, its message and the effective
    status (the latest override, else the decision)."""

    id: int
    message_id: int
    position: int
    sender_her: str
    sender_name: str | None
    practitioner_id: str
    guid: str
    regning_nr: str
    dato_tid: datetime  # naive Norwegian local time
    kreditering: bool
    betalt_egenandel: bool
    kode_egenandel: str | None
    patient_id: str  # national identity number: health data, kept out of repr
    patient_id_type: str
    sum_refusjon_ore: int
    status: str  # the engine's decision
    approved_ore: int  # the engine's decision
    credited_by: int | None
    received_id: int
    received_at: datetime  # UTC
    ruleset_version: str | None
    apprec_status: int | None
    msg_id: str | None
    effective_status: str  # the latest override, else ``status``
    effective_ore: int
    override_id: int | None
    override_kind: str | None

    def __repr__(self) -> str:
        return (
            f"CaseBill(id={self.id}, regning_nr={self.regning_nr!r}, guid={self.guid!r}, "
            f"status={self.status!r}, effective_status={self.effective_status!r})"
        )


@dataclass(frozen=True, slots=True)
class CaseLine:
    """One stored line of a bill: a takst (with amount and antall), diagnosis, procedure or
    tooth."""

    kind: str
    code: str
    code_system: str | None
    amount_ore: int | None
    antall: int | None


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as stored with the original decision."""

    id: int
    bill_id: int | None  # None: a message rule
    rule_id: str
    rule_version: int
    code: str
    severity: str
    text: str
    facts: dict[str, str]


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """One audited override (``kind`` 'override' by a case worker, 'rebehandling' by replay)."""

    id: int
    bill_id: int
    decision: str
    amount_ore: int
    reason: str
    by: str
    at: datetime  # UTC
    previous_status: str
    previous_ore: int
    kind: str
    ruleset_version: str | None
    details: str | None


@dataclass(frozen=True, slots=True)
class EffectiveStatus:
    """A bill's status as it stands: the latest override, else the engine's decision."""

    bill_id: int
    status: str  # 'godkjent' | 'avvist'
    approved_ore: int
    overridden: bool
    override_id: int | None
    override_kind: str | None


@dataclass(frozen=True, slots=True)
class PaperClaim:
    """A paper claim (papirregning) as KUHR keeps it: only the aggregate of one submission, the
    refund paid for it, per practice and period; never a patient. ``paper_id`` is set once it is
    stored."""

    practice_her: str
    submission: str  # the submission's own reference (innsending), unique per practice
    period_from: date  # treatment days the submission covers
    period_to: date
    bills: int  # how many bills the submission held (a count only)
    refund_ore: int  # the refund paid for the submission, in øre
    practice_type: str | None = None  # the practitioner type (lege, fysioterapeut, ...)
    paper_id: int | None = None

    def __post_init__(self) -> None:
        if not self.practice_her.isdigit():
            raise ValueError(f"practice HER id must be digits, got {self.practice_her!r}")
        if not self.submission.strip():
            raise ValueError("a paper claim needs its submission reference")
        if self.period_from > self.period_to:
            raise ValueError("the period of a paper claim ends before it starts")
        if self.bills < 0 or self.refund_ore < 0:
            raise ValueError("bills and refund of a paper claim cannot be negative")


# --- the web console and the claim status API ------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A console user as stored; ``password_hash`` is argon2id, never the password."""

    id: int
    username: str
    display_name: str
    password_hash: str
    roles: tuple[str, ...]
    disabled: bool
    created_at: datetime  # UTC
    updated_at: datetime  # UTC


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A console session as stored: the SHA-256 of its token, never the token."""

    token_hash: str
    user_id: int
    csrf_token: str
    created_at: datetime  # UTC
    last_seen_at: datetime  # UTC
    expires_at: datetime  # UTC: the absolute end, whatever the activity


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log: who did what to what, when, from where."""

    id: int
    at: datetime  # UTC
    actor: str  # a console user name, or cli:<login name>
    action: str
    target: str | None
    detail: str | None  # never a national id
    client: str | None


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One bill in manual control, as the worklist shows it."""

    bill_id: int
    received_at: datetime  # UTC
    sender_her: str
    sender_name: str | None
    practitioner_type: str | None
    regning_nr: str
    dato_tid: datetime  # naive Norwegian local time
    sum_refusjon_ore: int
    rules: tuple[str, ...]  # the manual-control rules that fired: "RULE-ID (CODE)"


@dataclass(frozen=True, slots=True)
class WorklistFilter:
    """What the worklist is narrowed by; None: any."""

    sender_her: str | None = None
    practitioner_type: str | None = None
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class WorklistSummary:
    """How many bills a filter leaves, the oldest, and the values to filter by."""

    count: int
    oldest: datetime | None
    senders: tuple[str, ...]
    practitioner_types: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BillSearch:
    """What a case worker searches by; every given field must match."""

    guid: str | None = None
    regning_nr: str | None = None
    msg_id: str | None = None
    sender_her: str | None = None
    treated_from: datetime | None = None  # naive local, DatoTid >=
    treated_until: datetime | None = None  # naive local, DatoTid <
    national_id: str | None = None  # only for a role allowed it (checked by the caller)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) in (None, "") for f in self.__slots__)


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """A payout ledger line of one bill, with its run."""

    bill_id: int
    run_id: int
    run_key: str
    run_at: datetime  # UTC
    run_state: str
    kind: str
    amount_ore: int


@dataclass(frozen=True, slots=True)
class BillFlags:
    """Columns of a bill that ``CaseBill`` does not carry."""

    bill_id: int
    manual: bool
    practitioner_type: str | None
    changed_at: datetime  # UTC: received, overridden or paid, whichever is latest


@dataclass(frozen=True, slots=True)
class SenderMessage:
    """A message of one sender, for the status API."""

    message_id: int
    received_id: int
    msg_id: str | None
    received_at: datetime  # UTC
    outcome: str
    apprec_status: int | None
    bills: int
    changed_at: datetime  # UTC: the latest change of the message or one of its bills
