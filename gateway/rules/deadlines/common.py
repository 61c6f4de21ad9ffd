"""Small helpers shared by the deadline/correction rules and the dental time rules."""

from __future__ import annotations

from datetime import date, datetime

from gateway.rules.base import ClaimContext, HistoricBill

#: Where a conflicting bill was found, as the Norwegian texts say it.
SAME_MESSAGE = "samme melding"
EARLIER_MESSAGE = "tidligere melding"


def credited_in_message(ctx: ClaimContext) -> frozenset[str]:
    """Guids of the bills credited by approved credits earlier in this message.

    The store still counts those originals as live (the credit is committed with the message),
    so a rule that looks at history must not count them: credit-then-rebill in one message is
    the correction the sender is asked to make.
    """
    return frozenset(b.guid for b in ctx.earlier.approved() if b.kreditering)


def is_live_other(
    stored: HistoricBill, guid: str, ctx: ClaimContext, credited: frozenset[str]
) -> bool:
    """Whether a stored bill is another live bill than the one with ``guid`` from this sender.

    The same Guid from the same sender is the same bill sent again: rule DUP-001's business.
    """
    if stored.sender_her != ctx.sender_her:
        return True
    return stored.guid != guid and stored.guid not in credited


def fmt_time(moment: datetime) -> str:
    """``12.10.2026 kl. 12:00``"""
    return moment.strftime("%d.%m.%Y kl. %H:%M")


def fmt_date(day: date) -> str:
    """``12.10.2026``"""
    return day.strftime("%d.%m.%Y")
