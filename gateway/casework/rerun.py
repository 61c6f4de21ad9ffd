"""Re-running the rules on a stored message: rebuild the claim from the original bytes, and a
history that leaves the message itself (and everything after it) out.

Used by ``gateway rules explain`` and ``gateway rules replay``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.casework.lookup import CaseworkError
from gateway.claims.bkm import parse_behandlerkrav
from gateway.claims.model import BehandlerKrav, MsgHead
from gateway.claims.msghead import parse_msghead
from gateway.claims.practitioner import practitioner_id
from gateway.clock import local_naive
from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.errors import GatewayError
from gateway.practices.model import EMPTY_REGISTER, PracticeRegister
from gateway.practices.senders import sender_of
from gateway.rules.base import ClaimContext, HistoricBill, StoredBill
from gateway.rules.engine import Evaluation, RuleEngine, Trace
from gateway.rules.registry import RULES
from gateway.store import Store
from gateway.store.history import History
from gateway.tariffs.model import EMPTY_BOOK, TariffBook
from gateway.validation.safe_xml import parse_xml

#: Same bound as the default ``validation.max_message_bytes``: stored messages passed it once.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Environment:
    """What a re-run evaluates with: the rule set, tariffs and practice register of now."""

    engine: RuleEngine = field(default_factory=lambda: RuleEngine(RULES))
    tariffs: TariffBook = EMPTY_BOOK
    #: The practice register, as the pipeline's ``practices``.
    practices: PracticeRegister = EMPTY_REGISTER


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A stored claim message, parsed again from its original bytes."""

    head: MsgHead
    krav: BehandlerKrav


def rebuild_message(raw: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Rebuilt:
    """Parse a stored message (ebXML MIME package, or a bare MsgHead document) again."""
    try:
        payload = _payload(raw, max_bytes)
        document = parse_msghead(parse_xml(payload, max_bytes=max_bytes))
        return Rebuilt(head=document.head, krav=parse_behandlerkrav(document.content))
    except GatewayError as exc:
        raise CaseworkError(f"Den lagrede meldingen kan ikke leses på nytt: {exc}") from exc


def _payload(raw: bytes, max_bytes: int) -> bytes:
    if raw[:64].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return raw
    package = mime.unwrap(raw)
    envelope = parse_envelope(package.envelope.body)
    if not envelope.manifest:
        raise CaseworkError("Den lagrede ebXML-meldingen har ingen Manifest.")
    reference = envelope.manifest[0]
    part = package.part(reference.content_id or reference.href)
    if part is None:
        raise CaseworkError("Den lagrede ebXML-meldingen mangler nyttelasten.")
    body = part.body
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise CaseworkError(f"Nyttelasten kan ikke pakkes ut: {exc}") from exc
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise CaseworkError("Utpakket nyttelast er for stor.")
    return data


class HistoryBefore:
    """The store's claim history as it is now, without message ``message_id`` and later ones.

    A stored message's own bills are in the store already; evaluated against the plain store,
    a bill would conflict with itself. Later messages are left out so that, as on intake, the
    later of two conflicting bills is the one that breaks a rule. Only the store's history
    methods are wrapped: what they count as history (approved, uncredited bills) is theirs.
    One difference remains: a bill credited after this message no longer counts here, except
    in ``approved_bill`` (so a credit re-run still finds its original uncredited)."""

    def __init__(self, history: History, message_id: int) -> None:
        self._history = history
        self._message_id = message_id

    def approved_bill(self, sender_her: str, guid: str) -> StoredBill | None:
        return self._history.approved_bill_before(sender_her, guid, self._message_id)

    def practitioner_bills_between(
        self, practitioner_id: str, start: datetime, end: datetime
    ) -> Sequence[HistoricBill]:
        bills = self._history.practitioner_bills_between(practitioner_id, start, end)
        return self._earlier(bills)

    def patient_bills_between(
        self, patient_id: str, start: datetime, end: datetime
    ) -> Sequence[HistoricBill]:
        return self._earlier(self._history.patient_bills_between(patient_id, start, end))

    def patient_code_count(
        self, patient_id: str, codes: frozenset[str], start: datetime, end: datetime
    ) -> int:
        total = self._history.patient_code_count(patient_id, codes, start, end)
        if total == 0:
            return 0
        later = self._history.patient_code_count_from(
            patient_id, codes, start, end, self._message_id
        )
        return total - later

    def _earlier(self, bills: Sequence[HistoricBill]) -> list[HistoricBill]:
        if not bills:
            return []
        # History bills are live approved originals: (sender, Guid) names exactly one row.
        keys = [(b.sender_her, b.guid) for b in bills]
        arrived = self._history.live_approved_message_ids(keys)
        return [
            b
            for b in bills
            if arrived.get((b.sender_her, b.guid), self._message_id) < self._message_id
        ]


@dataclass(frozen=True, slots=True)
class Rerun:
    """A stored message evaluated again."""

    rebuilt: Rebuilt
    context: ClaimContext
    evaluation: Evaluation


def rerun_message(
    store: Store,
    *,
    message_id: int,
    received_id: int,
    received_at: datetime,
    env: Environment,
    trace: Trace | None = None,
) -> Rerun:
    """Evaluate a stored message again with ``env``, as received at ``received_at`` (UTC)."""
    rebuilt = rebuild_message(store.messages.received_raw(received_id))
    head = rebuilt.head
    sender = sender_of(env.practices, head, local_naive(received_at).date())
    context = ClaimContext(
        head=head,
        krav=rebuilt.krav,
        sender_her=head.sender.her_id or "",
        received_at=local_naive(received_at),
        history=HistoryBefore(store.history, message_id),
        tariffs=env.tariffs,
        practitioner=sender.practitioner_type,
        practitioner_id=practitioner_id(head),
        practices=env.practices,
        practice=sender.practice,
    )
    evaluation = env.engine.evaluate(context, trace=trace)
    return Rerun(rebuilt=rebuilt, context=context, evaluation=evaluation)
