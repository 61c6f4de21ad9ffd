"""Which takster may stand together on one bill.

- TAR-002 UGYLDIG_KOMBINASJON: a takst's ``invalid_with`` codes may not be on the same bill, and a
  takst marked ``invalid_with_all`` ("alle") stands alone (COMB-001, basis S; the data behind
  COMB-002 "alle" for 1bd/1be/1bk, COMB-005, COMB-007, COMB-008, COMB-009, COMB-010, basis R).
  The check is symmetric: it is enough that one of the two takster names the other.
- TAR-003 MANGLER_TAKST: a takst with ``requires_takst`` needs at least one of those codes on the
  same bill (COMB-003, basis S: Helfo's takstkontroll for tilleggstakster since 2017-12-01).

Codes in the tariff data are full takst codes, compared without regard to case; the loader
expands families such as "11 med unntak av 11e" into codes.
"""

from __future__ import annotations

from datetime import date

from gateway.claims.model import Enkeltregning
from gateway.rules.base import ClaimContext, Facts, Rule, Scope, Severity
from gateway.rules.tariff.support import EARLIEST, TAKST_TYPES, by_code, listing, tariff_view
from gateway.tariffs.model import TakstEntry

#: Helfo's automatic takstkontroll of tilleggstakster started on this day (COMB-003).
TAKSTKONTROLL_FROM = date(2017, 12, 1)


def _lower(codes: frozenset[str]) -> frozenset[str]:
    return frozenset(c.lower() for c in codes)


def _invalid_combinations(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    view = tariff_view(bill, ctx)
    if view is None:
        return None
    groups = by_code(bill)
    entries: dict[str, TakstEntry | None] = {g.code: view.entry(g.code) for g in groups}
    conflicts: list[str] = []
    first: tuple[str, str] | None = None
    for i, group in enumerate(groups):
        entry = entries[group.code]
        if entry is not None and entry.invalid_with_all and len(groups) > 1:
            others = [g.shown for g in groups if g.code != group.code]
            conflicts.append(
                f"takst {group.shown} kan ikke kombineres med andre takster "
                f"(her: {listing(others)})"
            )
            first = first or (group.shown, others[0])
            continue
        for other in groups[i + 1 :]:
            other_entry = entries[other.code]
            named = entry is not None and other.code in _lower(entry.invalid_with)
            named_back = other_entry is not None and group.code in _lower(other_entry.invalid_with)
            if named or named_back:
                conflicts.append(f"takst {group.shown} kan ikke kombineres med takst {other.shown}")
                first = first or (group.shown, other.shown)
    if first is None:
        return None
    return {"takst": first[0], "annen": first[1], "konflikter": "; ".join(conflicts)}


def _missing_companion(bill: Enkeltregning, _index: int, ctx: ClaimContext) -> Facts | None:
    view = tariff_view(bill, ctx)
    if view is None:
        return None
    groups = by_code(bill)
    present = {g.code for g in groups}
    missing: list[str] = []
    first: tuple[str, str] | None = None
    for group in groups:
        entry = view.entry(group.code)
        if entry is None or not entry.requires_takst:
            continue
        needed = _lower(entry.requires_takst)
        if needed & present:
            continue
        wanted = sorted(needed)
        what = (
            f"takst {wanted[0]}"
            if len(wanted) == 1
            else "en av takstene " + listing(wanted, "eller")
        )
        missing.append(f"takst {group.shown} krever {what}")
        first = first or (group.shown, listing(wanted, "eller"))
    if first is None:
        return None
    return {"takst": first[0], "krever": first[1], "mangler": "; ".join(missing)}


INVALID_COMBINATION = Rule(
    id="TAR-002",
    version=1,
    code="UGYLDIG_KOMBINASJON",
    text="Ugyldig takstkombinasjon på samme regning: {konflikter}.",
    guidance=(
        "Fjern takstene som ikke kan kombineres, eller send dem på egne regninger der "
        "takstreglene tillater det, og send regningen på nytt."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=EARLIEST,
    valid_to=None,
    check=_invalid_combinations,
    practitioners=TAKST_TYPES,
    basis=(
        "COMB-001 (S); data for COMB-002 'alle' (S), COMB-005, COMB-007, COMB-008, COMB-009, "
        "COMB-010 (R); KUHR ugyldig_kombinasjon (CALC-004, S)"
    ),
)

MISSING_COMPANION = Rule(
    id="TAR-003",
    version=1,
    code="MANGLER_TAKST",
    text="Tilleggstakst uten hovedtakst på samme regning: {mangler}.",
    guidance=(
        "Før tilleggstaksten på samme regning som hovedtaksten den hører til, "
        "og send regningen på nytt."
    ),
    severity=Severity.REJECT_BILL,
    scope=Scope.BILL,
    valid_from=TAKSTKONTROLL_FROM,
    valid_to=None,
    check=_missing_companion,
    practitioners=TAKST_TYPES,
    basis="COMB-003 (S, Helfo takstkontroll from 2017-12-01); KUHR krever_takst (CALC-004, S)",
)
