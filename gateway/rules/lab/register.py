"""Consistency checks of the NLK register data the lab rules pay by (not a bill rule).

``register_problems`` lists what looks wrong in a tariff book's NLK data, in Norwegian, for an
import to print or refuse: a category outside the code's field, a new code (first listed after
2018-01-01, replacing nothing) outside category 2 of its field, a replaced code that is unknown.
"""

from __future__ import annotations

import re

from gateway.rules.lab.common import NLK_START
from gateway.tariffs.model import NlkEntry, TariffBook

_CATEGORY = re.compile(r"^([A-Z]+)(\d+)$")


def register_problems(book: TariffBook) -> list[str]:
    first: dict[str, NlkEntry] = {}
    known = {entry.code.upper() for entry in book.nlk_codes}
    problems: list[str] = []
    for entry in book.nlk_codes:
        code = entry.code.upper()
        if code not in first or entry.valid_from < first[code].valid_from:
            first[code] = entry
        field = entry.fagomrade.upper()
        match = _CATEGORY.match(entry.category.upper())
        if match is None or match.group(1) != field:
            problems.append(
                f"{entry.code} fra {entry.valid_from}: refusjonskategori {entry.category!r} "
                f"hører ikke til fagområde {entry.fagomrade}"
            )
        if entry.replaces and entry.replaces.upper() not in known:
            problems.append(
                f"{entry.code} fra {entry.valid_from}: erstatter ukjent kode {entry.replaces}"
            )
    for entry in first.values():
        if entry.valid_from <= NLK_START or entry.replaces:
            continue
        expected = f"{entry.fagomrade.upper()}2"
        if entry.category.upper() != expected:
            problems.append(
                f"{entry.code} er ny fra {entry.valid_from} og skal ligge i kategori {expected}, "
                f"ikke {entry.category}"
            )
    return problems
