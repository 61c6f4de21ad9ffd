"""The console's and the status API's one door to the claims store.

Every call on the ``Store``'s parts made by ``gateway.web`` is in this module, so a change of
the store's shape is adapted here and nowhere else. Case work goes through ``gateway.casework``
(the same code as ``gateway claims``/``gateway rules``), dead letters through the same
``store.outbox`` calls as ``gateway outbox requeue|discard``, a bill's payout status through the
ledger's own rule (``ledger.bill_target``).

Everything here is synchronous (SQLite); the web layer calls it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.casework.cli import environment
from gateway.casework.explain import Explanation, explain
from gateway.casework.lookup import BillDetails, CaseworkError, bill_details
from gateway.casework.overrides import override
from gateway.casework.replay import ReplayReport, replay
from gateway.config import Config
from gateway.payout import ledger
from gateway.records import (
    BillFlags,
    BillSearch,
    CaseBill,
    OutboxSummary,
    OverrideRecord,
    PayoutLine,
    ReceivedSummary,
    ReplySummary,
    SenderMessage,
    StoredFinding,
    WorkItem,
    WorklistFilter,
    WorklistSummary,
)
from gateway.store import Store
from gateway.store.engine import Engine
from gateway.users.accounts import Accounts, Policy

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class BillView:
    """Everything the bill page shows."""

    details: BillDetails
    flags: BillFlags
    payout_lines: tuple[PayoutLine, ...]
    replies: tuple[ReplySummary, ...]
    explanation: Explanation | None
    explain_error: str | None
    target_ore: int  # what the payout ledger means to have paid in all


@dataclass(frozen=True, slots=True)
class ClaimBill:
    """A bill as the status API reports it."""

    bill: CaseBill
    flags: BillFlags
    findings: tuple[StoredFinding, ...]
    payout_lines: tuple[PayoutLine, ...]
    target_ore: int


@dataclass(frozen=True, slots=True)
class ClaimMessage:
    message: SenderMessage
    bills: tuple[ClaimBill, ...]
    message_findings: tuple[StoredFinding, ...]


class ConsoleData:
    """The store, as the console and the status API use it."""

    def __init__(self, config: Config, store: Store, policy: Policy | None = None) -> None:
        self.config = config
        self.store = store
        self.queries = store.console
        self.accounts = Accounts(store.users, policy)
        # The payout tables are the ledger's, made by its first run: the pages read them before.
        ledger.create_tables(store.engine)

    @classmethod
    def open(cls, config: Config, policy: Policy | None = None) -> ConsoleData:
        return cls(config, Store(config.database), policy)

    @property
    def database(self) -> Engine:
        """The claims database, for the payout and statistics functions that take it."""
        return self.store.engine

    def close(self) -> None:
        self.store.close()

    # --- case work -----------------------------------------------------------------------------

    def worklist(
        self, f: WorklistFilter, *, limit: int, offset: int
    ) -> tuple[list[WorkItem], WorklistSummary]:
        items = self.queries.worklist(f, limit=limit, offset=offset)
        return items, self.queries.worklist_summary(f)

    def search(self, s: BillSearch, *, limit: int = 200) -> list[CaseBill]:
        bills = (self.store.casework.bill(i) for i in self.queries.search_bills(s, limit=limit))
        return [b for b in bills if b is not None]

    def bill(self, bill_id: int) -> CaseBill | None:
        return self.store.casework.bill(bill_id)

    def bill_view(self, bill_id: int, *, with_explanation: bool = True) -> BillView | None:
        bill = self.store.casework.bill(bill_id)
        if bill is None:
            return None
        explanation: Explanation | None = None
        problem: str | None = None
        if with_explanation:
            try:
                explanation = explain(self.store, bill, environment(self.config, self.store))
            except CaseworkError as exc:
                problem = str(exc)
        lines = tuple(self.queries.payout_lines([bill.id]))
        flags = self.queries.bill_flags([bill.id])[bill.id]
        return BillView(
            details=bill_details(self.store, bill),
            flags=flags,
            payout_lines=lines,
            replies=tuple(self.store.messages.replies_of(bill.received_id)),
            explanation=explanation,
            explain_error=problem,
            target_ore=self._target(bill, flags, lines),
        )

    def override(
        self, bill_id: int, *, decision: str, reason: str, by: str, amount_ore: int | None
    ) -> tuple[CaseBill, OverrideRecord]:
        """``gateway claims override`` exactly: the same checks, the same audited record."""
        bill = self.store.casework.bill(bill_id)
        if bill is None:
            raise CaseworkError(f"Fant ingen regning med id {bill_id}.")
        record = override(
            self.store, bill, decision=decision, reason=reason, by=by, amount_ore=amount_ore
        )
        return bill, record

    def replay(
        self,
        *,
        since: datetime,
        until: datetime | None,
        by_received: bool,
        apply: bool,
        by: str,
        progress: Progress,
    ) -> ReplayReport:
        """``gateway rules replay`` exactly (preview, or ``apply`` as ``by``)."""
        return replay(
            self.store,
            since=since,
            until=until,
            by_received=by_received,
            env=environment(self.config, self.store),
            apply=apply,
            by=by if apply else None,
            progress=progress,
        )

    def _target(self, bill: CaseBill, flags: BillFlags, lines: Sequence[PayoutLine]) -> int:
        original_paid: int | None = None
        if bill.kreditering:
            original = self.queries.credited_original(bill.id)
            if original is not None:
                original_paid = sum(x.amount_ore for x in self.queries.payout_lines([original]))
        return ledger.bill_target(
            kreditering=bill.kreditering,
            credited=bill.credited_by is not None,
            manual=flags.manual,
            status=bill.effective_status,
            approved_ore=bill.effective_ore,
            override_kind=bill.override_kind,
            paid=sum(x.amount_ore for x in lines),
            original_paid=original_paid,
        )

    # --- the status API: one sender's claims ---------------------------------------------------

    def sender_messages(
        self, sender_her: str, *, since: datetime | None, after_id: int, limit: int
    ) -> list[SenderMessage]:
        return self.queries.sender_messages(
            sender_her, since=since, after_id=after_id, limit=limit
        )

    def sender_message(self, sender_her: str, msg_id: str) -> ClaimMessage | None:
        """A message of this sender by MsgId, with its bills; None for anyone else's."""
        message = self.queries.sender_message(sender_her, msg_id)
        return None if message is None else self.claim_message(message)

    def claim_message(self, message: SenderMessage) -> ClaimMessage:
        """A message found by ``sender_messages``, with its bills and findings."""
        findings = self.store.casework.findings(message.message_id)
        bills = self._claim_bills(self.store.casework.message_bills(message.message_id), findings)
        return ClaimMessage(
            message, tuple(bills), tuple(f for f in findings if f.bill_id is None)
        )

    def sender_bills(
        self,
        sender_her: str,
        *,
        guid: str | None = None,
        regning_nr: str | None = None,
        since: datetime | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[ClaimBill]:
        """This sender's bills: by Guid or RegningNr (every one with it), else all after
        ``after_id`` (changed since ``since``), oldest first. Never another sender's."""
        if guid or regning_nr:
            ids = [
                i
                for i in self.store.casework.bill_ids(
                    guid=guid or None, sender_her=sender_her, regning_nr=regning_nr or None
                )
                if i > after_id
            ][:limit]
        else:
            ids = self.queries.sender_bill_ids(
                sender_her, since=since, after_id=after_id, limit=limit
            )
        bills = [b for b in (self.store.casework.bill(i) for i in ids) if b is not None]
        bills = [b for b in bills if b.sender_her == sender_her]  # fail closed
        findings: list[StoredFinding] = []
        for message_id in sorted({b.message_id for b in bills}):
            findings.extend(self.store.casework.findings(message_id))
        return self._claim_bills(bills, findings)

    def _claim_bills(
        self, bills: Sequence[CaseBill], findings: Sequence[StoredFinding]
    ) -> list[ClaimBill]:
        ids = [b.id for b in bills]
        flags = self.queries.bill_flags(ids)
        lines = self.queries.payout_lines(ids)
        out: list[ClaimBill] = []
        for b in bills:
            own = tuple(x for x in lines if x.bill_id == b.id)
            out.append(
                ClaimBill(
                    bill=b,
                    flags=flags[b.id],
                    findings=tuple(f for f in findings if f.bill_id == b.id),
                    payout_lines=own,
                    target_ore=self._target(b, flags[b.id], own),
                )
            )
        return out

    # --- operations ----------------------------------------------------------------------------

    def received(
        self, *, since: datetime | None, outcome: str | None, limit: int
    ) -> list[ReceivedSummary]:
        return self.store.messages.list_received(since=since, outcome=outcome, limit=limit)

    def received_one(self, received_id: int) -> tuple[ReceivedSummary, list[ReplySummary]] | None:
        found = self.store.messages.received_summary(received_id)
        if found is None:
            return None
        return found, self.store.messages.replies_of(found.id)

    def replies(self, *, state: str | None, kind: str | None, limit: int) -> list[ReplySummary]:
        return self.store.outbox.list_replies(state=state, kind=kind, limit=limit)

    def reply(self, reply_id: int) -> ReplySummary | None:
        return self.store.outbox.reply(reply_id)

    def reply_body(self, reply_id: int) -> bytes:
        return self.store.outbox.reply_body(reply_id)

    def dead_letters(self) -> list[ReplySummary]:
        return self.store.outbox.dead_letters()

    def requeue(self, reply_ids: Sequence[int], *, by: str) -> list[int]:
        """``gateway outbox requeue`` exactly."""
        return self.store.outbox.requeue(reply_ids, by=by)

    def discard(self, reply_ids: Sequence[int], reason: str, *, by: str) -> list[int]:
        """``gateway outbox discard`` exactly."""
        return self.store.outbox.discard(reply_ids, reason, by=by)

    def outbox_summary(self) -> OutboxSummary:
        return self.store.outbox.summary()

    def counts(self) -> dict[str, int]:
        return self.store.messages.counts()
