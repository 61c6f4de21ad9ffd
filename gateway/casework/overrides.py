"""``gateway claims override``: a case worker's decision on a bill, as its own audited record.

The engine's decision is never edited: an override is a new row in ``overrides``, and the latest
row is the bill's effective status (``store.casework.effective_bill_status``).
"""

from __future__ import annotations

from datetime import datetime

from gateway.casework.lookup import CaseworkError, kroner
from gateway.records import CaseBill, OverrideRecord
from gateway.store import Store

APPROVE = "godkjent"
REJECT = "avvist"
#: ``by`` values starting with this are written by ``gateway rules replay --apply`` only.
REPLAY_PREFIX = "rebehandling:"
MAX_REASON = 2000
MAX_BY = 200


def override(
    store: Store,
    bill: CaseBill,
    *,
    decision: str,
    reason: str,
    by: str,
    amount_ore: int | None = None,
    at: datetime | None = None,
) -> OverrideRecord:
    """Record a case worker's decision (``godkjent``/``avvist``) on ``bill``.

    Approving without an amount keeps the effective approved amount if the bill is approved,
    else the claimed refund. Raises ``CaseworkError`` (Norwegian) when refused."""
    reason, by = reason.strip(), by.strip()
    if decision not in (APPROVE, REJECT):
        raise CaseworkError(f"Ukjent vedtak {decision!r}; bruk godkjent eller avvist.")
    if not reason:
        raise CaseworkError("En overstyring må ha en begrunnelse (--reason).")
    if not by:
        raise CaseworkError("En overstyring må si hvem som gjør den (--by).")
    if len(reason) > MAX_REASON or len(by) > MAX_BY:
        raise CaseworkError(
            f"Begrunnelsen kan være høyst {MAX_REASON} tegn og navnet høyst {MAX_BY}."
        )
    if by.lower().startswith(REPLAY_PREFIX):
        raise CaseworkError(f"Navn som begynner med {REPLAY_PREFIX!r} brukes bare av rebehandling.")
    check_overridable(store, bill)
    if decision == REJECT:
        if amount_ore is not None:
            raise CaseworkError("--amount kan bare brukes med --approve.")
        amount = 0
    else:
        amount = approve_amount(bill, amount_ore)
        check_single_approval(store, bill)
    return store.casework.record_override(
        bill.id, decision=decision, amount_ore=amount, reason=reason, by=by, at=at
    )


def check_overridable(store: Store, bill: CaseBill) -> None:
    """Refuse overrides of credits and of credited bills."""
    if bill.kreditering:
        raise CaseworkError(
            f"Regning {bill.id} er en kreditering. En kreditering overstyres ikke: behandle "
            "den opprinnelige regningen, eller be behandleren sende krediteringen på nytt."
        )
    if bill.credited_by is not None:
        raise CaseworkError(
            f"Regning {bill.id} er kreditert (av regning {bill.credited_by}) og kan ikke "
            "overstyres."
        )


def approve_amount(bill: CaseBill, amount_ore: int | None) -> int:
    """The amount an approval pays: as asked, else as approved now, else as claimed."""
    if amount_ore is None:
        if bill.effective_status == APPROVE and bill.effective_ore > 0:
            return bill.effective_ore
        amount_ore = bill.sum_refusjon_ore
    if amount_ore > bill.sum_refusjon_ore:
        raise CaseworkError(
            f"Godkjent beløp {kroner(amount_ore)} kr er mer enn kravet på "
            f"{kroner(bill.sum_refusjon_ore)} kr."
        )
    if amount_ore <= 0 and bill.sum_refusjon_ore > 0:
        raise CaseworkError("Godkjent beløp må være mer enn 0 kr; bruk --reject for å avvise.")
    return amount_ore


def check_single_approval(store: Store, bill: CaseBill) -> None:
    """Refuse an approval that would leave two approved originals with one Guid (paid twice)."""
    approvals = store.casework.effective_live_approvals(bill.sender_her, bill.guid)
    others = [i for i in approvals if i != bill.id]
    if others:
        raise CaseworkError(
            f"Regning {others[0]} med samme Guid fra samme avsender er allerede godkjent; "
            f"å godkjenne regning {bill.id} ville betalt den to ganger."
        )
