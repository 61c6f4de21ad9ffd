"""The claimed refund must be what the tariff gives.

Per takst code the expected amount is the tariff's refusjon, or its honorar when an egenandel
exemption applies (a valid KodeEgenandel, a child under 16 at lege/psykolog/fysioterapeut, a
psykolog patient under 18; see ``exemptions.pricing``), for the first unit, and
``repetition_percent`` of it for every repetition (CALC-001, CALC-002, CONT-008, EGEN-004,
EGEN-005). Each Takst/Verdi is the claimed amount per unit, and SumKrav/Refusjon the bill's
total (as ``gateway.testing.claims.make_bill`` writes them: SumKrav = sum of Verdi x Antall).

- AMT-001 FEIL_BELOP, REJECT_BILL: a Verdi differs from the tariff amount per unit, or SumKrav
  is neither the expected total nor the plain sum of Verdi x Antall. A claim *above* the tariff
  is rejected too, not capped: CALC-006 (capping) is only inferred (basis I), while CONT-008
  (Verdi = the tariff value, basis R) says what a correct claim looks like, and a higher amount
  almost always means the honorar was claimed without a valid exemption or the EPJ has an old
  tariff; the sender must correct it, and a silent cap would leave its books differing from
  the payout without saying why.
- AMT-002 REPETISJONSPROSENT, ADJUST: every Verdi is right and SumKrav is the plain sum of
  Verdi x Antall, but some repetitions are paid at less than 100 %: the bill is approved at the
  expected total (CALC-002, basis S: KUHR computes the paid value itself).

Both stand aside without tariff data for the practitioner type, for codes the book does not
know on the date (TAR-001 rejects those), for a takst without the needed amount, and when the
exemption code is invalid (AMT-003 rejects those).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gateway.claims.model import Enkeltregning
from gateway.rules.amounts.exemptions import pricing
from gateway.rules.base import ClaimContext, Facts, Hit, Rule, Scope, Severity
from gateway.rules.tariff.support import (
    CENT,
    EARLIEST,
    TAKST_TYPES,
    by_code,
    kroner,
    repetition_factor,
    tariff_view,
)
from gateway.tariffs.model import TakstEntry


def unit_amount(entry: TakstEntry, honorar: bool) -> Decimal | None:
    """What HELFO pays for one unit of ``entry``: its honorar with an exemption, else its
    refusjon (or honorar - egenandel where only those are given)."""
    refusjon = entry.refusjon
    if refusjon is None and entry.honorar is not None and entry.egenandel is not None:
        refusjon = entry.honorar - entry.egenandel
    if not honorar:
        return refusjon
    if entry.honorar is not None:
        return entry.honorar
    if refusjon is not None and not entry.egenandel:
        return refusjon  # a takst without egenandel: refusjon is the whole fee (CALC-007)
    return None


@dataclass(frozen=True, slots=True)
class Expected:
    """What the tariff gives for a bill, next to what was claimed."""

    total: Decimal  # with repetisjonsprosent applied
    plain: Decimal  # every unit in full: sum of unit amount x antall
    mismatches: tuple[str, ...]  # per-code differences of Verdi from the unit amount
    reduced: tuple[str, ...]  # codes whose repetitions are paid at less than 100 %
    why: str  # which column applies and why


def expected(bill: Enkeltregning, ctx: ClaimContext) -> Expected | None:
    """The expected amounts for ``bill``, or ``None`` when they cannot be judged."""
    view = tariff_view(bill, ctx)
    if view is None:
        return None
    price = pricing(bill, view.practitioner)
    if price is None:
        return None
    total = plain = Decimal(0)
    mismatches: list[str] = []
    reduced: list[str] = []
    for group in by_code(bill):
        entry = view.entry(group.code)
        if entry is None:
            return None
        unit = unit_amount(entry, price.honorar)
        if unit is None:
            return None
        factor = repetition_factor(group.antall, entry.repetition_percent)
        total += (unit * factor).quantize(CENT, ROUND_HALF_UP)
        plain += unit * group.antall
        if group.antall > 1 and factor < group.antall:
            reduced.append(f"takst {group.shown} ({entry.repetition_percent} % per repetisjon)")
        wrong = sorted({line.verdi for line in group.lines if line.verdi != unit})
        if wrong:
            claimed = ", ".join(f"{kroner(v)} kr" for v in wrong)
            mismatches.append(
                f"takst {group.shown} er krevd med {claimed} per enhet, "
                f"men {kroner(unit)} kr gjelder"
            )
    return Expected(total, plain, tuple(mismatches), tuple(reduced), price.why)


def _wrong_amount(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    found = expected(bill, ctx)
    if found is None:
        return None
    claimed = bill.behandling.sum_refusjon
    if not found.mismatches and claimed in (found.total, found.plain):
        return None
    deviation = "; ".join(found.mismatches) or "SumKrav stemmer ikke med takstene"
    return {
        "avvik": deviation,
        "forventet": kroner(found.total),
        "krevd": kroner(claimed),
        "grunnlag": found.why,
    }


def _repetition_reduction(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Hit | None:
    found = expected(bill, ctx)
    if found is None or found.mismatches:
        return None
    claimed = bill.behandling.sum_refusjon
    if claimed != found.plain or found.total >= claimed:
        return None
    facts = {
        "takster": "; ".join(found.reduced),
        "godkjent": kroner(found.total),
        "krevd": kroner(claimed),
    }
    return Hit(facts=facts, approved_amount=found.total)


WRONG_AMOUNT = Rule(
    id="AMT-001",
    version=1,
    code="FEIL_BELOP",
    text=(
        "Beløpet stemmer ikke med takstene: {avvik}. Forventet refusjon er {forventet} kr "
        "etter {grunnlag}, krevd er {krevd} kr."
    ),
    guidance=(
        "Krev takstens beløp for behandlingsdatoen per enhet: refusjonstakst, eller "
        "honorartakst når pasienten er fritatt for egenandel (fritakskode, eller barn under "
        "16 år). SumKrav skal være summen av takstene."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_wrong_amount,
    practitioners=TAKST_TYPES,
    basis=(
        "CALC-001 (R), CONT-008 (R), EGEN-004 (R), EGEN-005 (R), EGEN-011 (R); "
        "CALC-006 (I): a wrong amount rejects the bill, it is not capped"
    ),
)

REPETITION_REDUCTION = Rule(
    id="AMT-002",
    version=1,
    code="REPETISJONSPROSENT",
    text=(
        "Gjentatte takster godtgjøres med redusert sats: {takster}. Godkjent beløp er "
        "{godkjent} kr (krevd {krevd} kr)."
    ),
    guidance=(
        "Repetisjoner av en takst på samme regning godtgjøres med takstens "
        "repetisjonsprosent; SumKrav kan gjerne vise det reduserte beløpet."
    ),
    severity=Severity.ADJUST,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_repetition_reduction,
    practitioners=TAKST_TYPES,
    basis="CALC-002 (S), CALC-003 (R); KUHR repetisjonsprosent (CALC-004, S)",
)
