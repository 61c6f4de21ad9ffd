"""The type of a contact (kontakttype), as the published statistics split contacts.

Two sources, in this order:

1. **The takster of the bill**, by the classification in ``kodeverk/kontakttype.csv`` (data, not
   code): a row names a practitioner type (``bills.practitioner_type``), a takst code prefix and
   the contact type. The first row (in file order) that matches any takst line of the bill wins,
   so the file lists the stronger types first: a physiotherapy visit billed with a group takst
   is a group treatment even if it also carries an examination takst. Today the file holds the
   physiotherapy split into examination (A1), individual treatment (A2, A8, A9, A10) and group
   treatment (C33, C34), from the published takst list.
2. **The practice type** in the practice register at the treatment date, for the contacts the
   statistics split by who was seen: ``fastlege`` and ``legevakt``.

Any other contact is ``annen``. The classification is matched in SQL when the statistics read a
bill (``CASE ... LIKE``), so its ``version`` (a hash of the file) is part of the statistics
mirror: another file rebuilds it.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "BY_PRACTICE_TYPE",
    "KONTAKTTYPER",
    "OTHER",
    "Classification",
    "classification",
]

#: The contact types a bill's takster decide (class numbers 1.. in this order).
KONTAKTTYPER = ("undersokelse", "individuell_behandling", "gruppebehandling")
#: The contact types the practice type decides.
BY_PRACTICE_TYPE = ("fastlege", "legevakt")
#: Every other contact.
OTHER = "annen"


@dataclass(frozen=True, slots=True)
class Classification:
    """The takst rows, in priority order: (practitioner type, takst prefix, contact type)."""

    rows: tuple[tuple[str, str, str], ...]
    version: str

    def rank_sql(self, practitioner: str, code: str) -> str:
        """A SQL expression: the priority (1 = first row) of the first row matching the bill's
        practitioner type column ``practitioner`` and a line's takst column ``code``, else
        NULL. ``MIN`` over the bill's takst lines gives the winning row."""
        if not self.rows:
            return "NULL"
        whens = " ".join(
            f"WHEN {practitioner} = '{ptype}' AND {code} LIKE '{prefix}%' THEN {rank}"
            for rank, (ptype, prefix, _type) in enumerate(self.rows, start=1)
        )
        return f"CASE {whens} ELSE NULL END"

    def type_of_rank(self, rank: int) -> str:
        """The contact type of a row priority from ``rank_sql`` (0: none matched)."""
        return self.rows[rank - 1][2] if rank > 0 else OTHER


def _safe(value: str, what: str, line: int) -> str:
    # The values go into SQL text: allow only what a type or a takst code is made of.
    if not value or not all(ch.isalnum() or ch in "_-" for ch in value):
        raise ValueError(f"kontakttype.csv line {line}: bad {what} {value!r}")
    return value


def classification() -> Classification:
    """The packaged classification (``gateway/stats/kodeverk/kontakttype.csv``)."""
    raw = resources.files("gateway.stats").joinpath("kodeverk/kontakttype.csv").read_bytes()
    reader = csv.DictReader(raw.decode("utf-8").splitlines())
    rows: list[tuple[str, str, str]] = []
    for line, row in enumerate(reader, start=2):
        kind = _safe(row["kontakttype"].strip(), "kontakttype", line)
        if kind not in KONTAKTTYPER:
            raise ValueError(f"kontakttype.csv line {line}: unknown kontakttype {kind!r}")
        rows.append(
            (
                _safe(row["practitioner_type"].strip(), "practitioner_type", line),
                _safe(row["takst_prefix"].strip(), "takst_prefix", line),
                kind,
            )
        )
    return Classification(tuple(rows), hashlib.sha256(raw).hexdigest()[:16])
