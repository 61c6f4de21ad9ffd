"""Lines grouped per payee, and which payees a run must hold back.

The ledger computes what is owed per bill; this module groups those lines by who is paid
(``Recipients.payee``: the practice register) and decides, per payee, whether the run may pay it:

- **no account** in the practice register: held. Nothing is recorded for the payee, so no
  decision is sent and its bills stay unpaid; the first run after the register gives it an
  account pays them all. (Recording the lines but leaving the payment out of pain.001 would
  make the ledger say "paid" for money that never left: the ledger must equal the money.)
- **negative net** (credits or corrections larger than what is owed): held, and so carried to
  the next run, where it is netted against new payments. A negative amount is never paid, and
  a decision is only sent when its net is at least 0. A net of exactly 0 is recorded and its
  decision sent (it explains the reversal), with no payment in pain.001.

Held lines are shown with a Norwegian reason by ``gateway payout preview`` and ``run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.payout.ledger import Hold, LineKey, PlannedLine
from gateway.payout.recipients import Payee, Recipients

NO_ACCOUNT = "Holdt tilbake: mottakeren mangler kontonummer i praksisregisteret"
NEGATIVE = "Holdt tilbake: negativ saldo {amount} kr overføres til neste kjøring"


@dataclass(frozen=True, slots=True)
class PayeePlan:
    """What a run would pay one payee: its lines, net total, and why it is held (if so)."""

    payee: Payee
    lines: tuple[PlannedLine, ...]
    total_ore: int
    held_reason: str | None

    @property
    def held(self) -> bool:
        """True when the run leaves this payee's lines for a later run."""
        return self.held_reason is not None


def plan_payees(lines: Sequence[PlannedLine], registry: Recipients) -> list[PayeePlan]:
    """Group ``lines`` per payee (ordered by payee HER id) and apply the hold rules."""
    grouped: dict[str, tuple[Payee, list[PlannedLine]]] = {}
    for line in lines:
        payee = registry.payee(line.receiver_her, line.practitioner_type)
        grouped.setdefault(payee.her_id, (payee, []))[1].append(line)
    plans: list[PayeePlan] = []
    for her in sorted(grouped):
        payee, items = grouped[her]
        total = sum(x.amount_ore for x in items)
        reason: str | None = None
        if payee.account is None:
            reason = NO_ACCOUNT
        elif total < 0:
            reason = NEGATIVE.format(amount=format_kroner(total))
        plans.append(PayeePlan(payee, tuple(items), total, reason))
    return plans


def hold_for(registry: Recipients) -> Hold:
    """A ``ledger.run`` hold: the bills of every payee ``plan_payees`` holds back."""

    def hold(lines: Sequence[PlannedLine]) -> set[LineKey]:
        return {x.key for p in plan_payees(lines, registry) if p.held for x in p.lines}

    return hold


def format_kroner(ore: int) -> str:
    """Øre as Norwegian kroner text, e.g. ``-1 234,50`` (exact; no floats)."""
    sign = "-" if ore < 0 else ""
    whole, cents = divmod(abs(ore), 100)
    return f"{sign}{whole:,}".replace(",", " ") + f",{cents:02d}"
