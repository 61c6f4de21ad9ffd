"""The practice register as the rules, the payout and the statistics read it.

A ``Practice`` is one row of the register: one practice (HER id, organisation number) for one
period of validity, with its practice type, specialties, municipality, agreements and payout
account. A practice that moved, changed type or got a new agreement has several rows, one per
period; the periods of one HER id never overlap. A ``PracticeRegister`` is one imported version,
immutable and indexed by HER id: a new import makes a new register.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date

from gateway.claims.practitioner import PRACTICE_TYPES, PracticeType, family_of

__all__ = ["EMPTY_REGISTER", "Period", "Practice", "PracticeRegister"]


@dataclass(frozen=True, slots=True)
class Period:
    """From ``start`` to ``end``, both days included; ``end`` None = open."""

    start: date
    end: date | None = None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def overlaps(self, other: Period) -> bool:
        return (other.end is None or self.start <= other.end) and (
            self.end is None or other.start <= self.end
        )

    def text(self) -> str:
        """``2024-01-01–`` or ``2024-01-01–2025-12-31``."""
        return f"{self.start.isoformat()}–{self.end.isoformat() if self.end else ''}"


@dataclass(frozen=True, slots=True)
class Practice:
    """One practice for one period of the register (see the module docstring)."""

    her_id: str
    name: str
    practice_type: str  # a key of gateway.claims.practitioner.PRACTICE_TYPES
    valid: Period
    enh_id: str | None = None  # organisation number (Enhetsregisteret)
    specialties: tuple[str, ...] = ()  # fagområder, the first is the main one
    municipality: str | None = None  # kommunenummer of the practice (4 digits)
    #: Avtale om direkte oppgjør with Helfo; None = none registered.
    direct_settlement: Period | None = None
    #: Driftsavtale (a physiotherapist's with the municipality, a specialist's with the RHF).
    operating_agreement: Period | None = None
    account: str | None = None  # payout account (11 digits, MOD11)
    kid: str | None = None  # KID for the payment
    owner_her_id: str | None = None  # the health authority owning a public laboratory
    mail_address: str | None = None  # where payout decisions are mailed (else 'HER:<id>')
    cpa_id: str | None = None  # the ebXML CPA with this practice, for payout decisions

    @property
    def kind(self) -> PracticeType:
        return PRACTICE_TYPES[self.practice_type]

    @property
    def practitioner_type(self) -> str | None:
        """The rule family its bills are checked as (``gateway.tariffs.model``)."""
        return family_of(self.kind, self.specialties)

    @property
    def fagomrade(self) -> str | None:
        """The main specialty (the statistics' ``fagomrade``), if any."""
        return self.specialties[0] if self.specialties else None

    def direct_settlement_on(self, day: date) -> bool:
        return self.direct_settlement is not None and self.direct_settlement.covers(day)

    def operating_agreement_on(self, day: date) -> bool:
        return self.operating_agreement is not None and self.operating_agreement.covers(day)


@dataclass(frozen=True)
class PracticeRegister:
    """One version of the register, indexed by HER id. Empty: nothing imported yet."""

    version: str
    practices: tuple[Practice, ...] = ()
    _by_her: Mapping[str, tuple[Practice, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def build(cls, version: str, practices: Iterable[Practice]) -> PracticeRegister:
        """Index ``practices`` (already checked: periods of one HER id do not overlap)."""
        by_her: dict[str, list[Practice]] = {}
        for practice in practices:
            by_her.setdefault(practice.her_id, []).append(practice)
        index = {
            her: tuple(sorted(rows, key=lambda p: p.valid.start)) for her, rows in by_her.items()
        }
        return cls(
            version,
            tuple(p for her in sorted(index) for p in index[her]),
            index,
        )

    def current(self) -> PracticeRegister:
        """A register is its own source (see ``gateway.practices.live``)."""
        return self

    def __bool__(self) -> bool:
        return bool(self.practices)

    def __len__(self) -> int:
        return len(self._by_her)

    def __iter__(self) -> Iterator[Practice]:
        return iter(self.practices)

    def knows(self, her_id: str) -> bool:
        """Whether the register has the practice at all (any period)."""
        return her_id in self._by_her

    def periods(self, her_id: str) -> tuple[Practice, ...]:
        """Every row of one practice, oldest first."""
        return self._by_her.get(her_id, ())

    def on(self, her_id: str, day: date) -> Practice | None:
        """The row of ``her_id`` valid on ``day``, if any."""
        rows = self._by_her.get(her_id, ())
        index = bisect.bisect_right([p.valid.start for p in rows], day) - 1
        if index >= 0 and rows[index].valid.covers(day):
            return rows[index]
        return None

    def latest(self, her_id: str) -> Practice | None:
        """The newest row of ``her_id`` (what a practice that has closed was last)."""
        rows = self._by_her.get(her_id, ())
        return rows[-1] if rows else None

    def best(self, her_id: str, day: date) -> Practice | None:
        """The row valid on ``day``, else the newest row that started on or before it, else the
        first: the practice as it was nearest that day."""
        found = self.on(her_id, day)
        if found is not None:
            return found
        rows = self._by_her.get(her_id, ())
        earlier = [p for p in rows if p.valid.start <= day]
        if earlier:
            return earlier[-1]
        return rows[0] if rows else None


EMPTY_REGISTER = PracticeRegister.build("none", ())
