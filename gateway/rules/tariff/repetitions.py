"""TAR-004 FOR_MANGE_REPETISJONER: a takst may be repeated on one bill at most
``max_repetitions`` times after the first (KUHR maks_repetisjoner; the "rep" column of the
normaltariff: ``0`` = not repeatable, paid once; ``50%`` = one repeat at half).

Outcome ADJUST, as the catalogue gives it (CALC-003, basis R: "cap / halve"; CALC-002, basis S:
KUHR computes the paid value from the takst value, antall and repetisjonsprosent): the bill is
approved, and the units beyond the maximum are not paid. The approved amount is the bill's
lines valued unit by unit at their claimed ``Verdi`` (repetitions at the repetisjonsprosent),
without the surplus units; whether ``Verdi`` itself is right is AMT-001's question.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Hit, Rule, Scope, Severity
from gateway.rules.tariff.support import (
    CENT,
    EARLIEST,
    TAKST_TYPES,
    by_code,
    kroner,
    line_values,
    tariff_view,
)


def _times(n: int) -> str:
    return f"{n} gang" if n == 1 else f"{n} ganger"


def _too_many_repetitions(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Hit | None:
    view = tariff_view(bill, ctx)
    if view is None:
        return None
    details: list[str] = []
    first: tuple[str, int, int] | None = None
    approved = Decimal(0)
    for group in by_code(bill):
        entry = view.entry(group.code)
        if entry is None:
            approved += sum((t.verdi * t.antall for t in group.lines), Decimal(0))
            continue
        limit = None if entry.max_repetitions is None else 1 + max(entry.max_repetitions, 0)
        approved += line_values(group.lines, entry.repetition_percent, limit)
        if limit is not None and group.antall > limit:
            details.append(
                f"takst {group.shown} er ført {_times(group.antall)}, "
                f"men godtgjøres høyst {_times(limit)}"
            )
            first = first or (group.shown, group.antall, limit)
    if first is None:
        return None
    claimed = bill.behandling.sum_refusjon
    approved = min(approved.quantize(CENT, ROUND_HALF_UP), claimed)
    facts = {
        "takst": first[0],
        "antall": str(first[1]),
        "maks": str(first[2]),
        "detaljer": "; ".join(details),
        "godkjent": kroner(approved),
        "krevd": kroner(claimed),
    }
    return Hit(facts=facts, approved_amount=approved)


TOO_MANY_REPETITIONS = Rule(
    id="TAR-004",
    version=1,
    code="FOR_MANGE_REPETISJONER",
    text=(
        "For mange repetisjoner på samme regning: {detaljer}. Det overskytende godkjennes "
        "ikke; godkjent beløp er {godkjent} kr (krevd {krevd} kr)."
    ),
    guidance=(
        "Før ikke en takst flere ganger på samme regning enn takstreglene tillater; "
        "gjentatte enheter godtgjøres etter repetisjonsprosenten."
    ),
    severity=Severity.ADJUST,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_too_many_repetitions,
    practitioners=TAKST_TYPES,
    basis=(
        "CALC-003 (R, ADJUST: cap); CALC-002 (S, repetisjonsprosent); KUHR maks_repetisjoner "
        "(CALC-004, S)"
    ),
)
