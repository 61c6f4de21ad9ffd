"""Small helpers for rules that name their takster themselves (from the catalogue, not from the
tariff data): which codes a bill carries, and how many units of a set."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.claims.model import Enkeltregning


def codes_on(bill: Enkeltregning) -> dict[str, str]:
    """Lower-case code -> the code as first written, in the order the bill has them."""
    found: dict[str, str] = {}
    for takst in bill.behandling.takster:
        found.setdefault(takst.kode.lower(), takst.kode)
    return found


def units_of(bill: Enkeltregning, codes: Iterable[str]) -> int:
    """Sum of ``antall`` of the lines whose code is in ``codes`` (lower case)."""
    wanted = frozenset(codes)
    return sum(t.antall for t in bill.behandling.takster if t.kode.lower() in wanted)


def shown(found: dict[str, str], codes: Iterable[str]) -> list[str]:
    """The codes of ``codes`` the bill has, as written, in bill order."""
    wanted = frozenset(codes)
    return [written for code, written in found.items() if code in wanted]
