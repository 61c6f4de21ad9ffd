"""Tariff and code data the rules read: the takst table and the NLK laboratory code register.

Modelled on KUHR's own master-data fields (fradato/tildato, honorar, refusjon, egenandel, maks
repetisjoner, repetisjonsprosent, ugyldig kombinasjon, krever takst/diagnose/prosedyre, maks per
år, minimum tidsbruk, tidsbruk per repetisjon) and on the NLK register (code, fagområde,
refusjonskategori, star flag, valid from/to). A ``TariffBook`` is one imported version, held in
memory with indexes, immutable: a new import makes a new book.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

#: Practitioner types: the rule families and tariffs a bill is checked against (not the practice
#: types of ``gateway.claims.practitioner``, which map onto these). ``lab`` is a laboratory (NLK
#: codes); ``rehabilitering`` and ``behandlingsreiser`` report egenandeler only.
PRACTITIONER_TYPES = frozenset(
    {
        "tannlege",
        "tannpleier",
        "kjeveortoped",
        "lege",
        "psykolog",
        "fysioterapeut",
        "kiropraktor",
        "logoped",
        "audiopedagog",
        "ortoptist",
        "lab",
        "medisinsk_genetikk",
        "radiologi",
        "psykiatri",
        "helsestasjon",
        "pasientreiser",
        "fritt_behandlingsvalg",
        "rehabilitering",
        "behandlingsreiser",
    }
)


@dataclass(frozen=True, slots=True)
class TakstEntry:
    """One takst code for one practitioner type, valid from ``valid_from`` to ``valid_to``."""

    code: str
    practitioner: str  # one of PRACTITIONER_TYPES
    valid_from: date
    valid_to: date | None
    honorar: Decimal | None  # full fee
    refusjon: Decimal | None  # what HELFO pays when an egenandel is charged
    egenandel: Decimal | None  # the patient's share
    max_repetitions: int | None = None  # on one bill; None = no limit
    repetition_percent: int | None = None  # paid per repetition after the first, in percent
    invalid_with: frozenset[str] = frozenset()  # codes that may not be on the same bill
    invalid_with_all: bool = False  # "alle": no other takst on the same bill
    requires_takst: frozenset[str] = frozenset()  # at least one of these on the same bill
    requires_diagnosis: bool = False
    requires_procedure: bool = False
    max_per_year: int | None = None  # per calendar year
    max_per_year_group: frozenset[str] = frozenset()  # codes counted together with this one
    max_per_year_per_patient: bool = True  # across all practitioners (True) or per practitioner
    min_minutes: int | None = None  # minimum time the takst requires
    minutes_per_repetition: int | None = None
    time_based: bool = False  # carries a time need even without explicit minutes (200-series)
    description: str = ""

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class NlkEntry:
    """One code of the Norwegian laboratory code register (NLK)."""

    code: str  # e.g. "NPU02319"
    fagomrade: str  # e.g. "MB" medisinsk biokjemi, "MM" mikrobiologi, "MG" medisinsk genetikk
    category: str  # refusjonskategori, e.g. "MB2"
    starred: bool  # stjernekode: simple biochemistry paid through ISF, not refunded here
    valid_from: date
    valid_to: date | None
    replaces: str | None = None  # the code this one replaces (takes its category)
    list_code: bool = False  # may repeat per panel/set-up/antigen (NPU21747, NPU26765, NPU20200)
    pharmacogenetic: bool = False  # allowed to clinical pharmacology alongside genetics
    description: str = ""

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class NlkRate:
    """Kroner paid per analysis in a refusjonskategori in a calendar year."""

    category: str
    year: int
    kroner: Decimal
    samhandlertype: str = "PO"


def _latest_valid(entries: list[TakstEntry] | list[NlkEntry], day: date) -> object | None:
    # Entries are sorted by valid_from; the last one starting on or before ``day`` wins.
    starts = [e.valid_from for e in entries]
    index = bisect.bisect_right(starts, day) - 1
    while index >= 0:
        entry = entries[index]
        if entry.valid_on(day):
            return entry
        index -= 1
    return None


@dataclass(frozen=True)
class TariffBook:
    """One version of all tariff data, indexed for the rules."""

    version: str
    takster: tuple[TakstEntry, ...] = ()
    nlk_codes: tuple[NlkEntry, ...] = ()
    nlk_rates: tuple[NlkRate, ...] = ()
    _takst_index: Mapping[tuple[str, str], list[TakstEntry]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _nlk_index: Mapping[str, list[NlkEntry]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _rate_index: Mapping[tuple[str, int], NlkRate] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def build(
        cls,
        version: str,
        takster: Iterable[TakstEntry] = (),
        nlk_codes: Iterable[NlkEntry] = (),
        nlk_rates: Iterable[NlkRate] = (),
    ) -> TariffBook:
        takst_index: dict[tuple[str, str], list[TakstEntry]] = {}
        for t in takster:
            takst_index.setdefault((t.practitioner, t.code.lower()), []).append(t)
        for entries in takst_index.values():
            entries.sort(key=lambda e: e.valid_from)
        nlk_index: dict[str, list[NlkEntry]] = {}
        for n in nlk_codes:
            nlk_index.setdefault(n.code.upper(), []).append(n)
        for nlk_entries in nlk_index.values():
            nlk_entries.sort(key=lambda e: e.valid_from)
        rates = tuple(nlk_rates)
        return cls(
            version=version,
            takster=tuple(e for v in takst_index.values() for e in v),
            nlk_codes=tuple(e for v in nlk_index.values() for e in v),
            nlk_rates=rates,
            _takst_index=takst_index,
            _nlk_index=nlk_index,
            _rate_index={(r.category, r.year): r for r in rates},
        )

    def takst(self, code: str, practitioner: str, on: date) -> TakstEntry | None:
        """The takst entry for ``code`` valid on ``on`` for this practitioner type."""
        entries = self._takst_index.get((practitioner, code.lower()))
        if not entries:
            return None
        found = _latest_valid(entries, on)
        return found if isinstance(found, TakstEntry) else None

    def knows_takst(self, code: str, practitioner: str) -> bool:
        """Whether the code exists at all for this practitioner type (any date)."""
        return (practitioner, code.lower()) in self._takst_index

    def nlk(self, code: str, on: date) -> NlkEntry | None:
        """The NLK register entry for ``code`` valid on ``on``."""
        entries = self._nlk_index.get(code.upper())
        if not entries:
            return None
        found = _latest_valid(entries, on)
        return found if isinstance(found, NlkEntry) else None

    def nlk_rate(self, category: str, year: int) -> NlkRate | None:
        return self._rate_index.get((category, year))

    def category_of(self, entry: NlkEntry, on: date) -> str:
        """The refusjonskategori to pay: a replacing code takes the category of the one it
        replaces, where that one is known."""
        if entry.replaces:
            replaced = self.nlk(entry.replaces, entry.valid_from) or self._any_nlk(entry.replaces)
            if replaced is not None:
                return replaced.category
        return entry.category

    def _any_nlk(self, code: str) -> NlkEntry | None:
        entries = self._nlk_index.get(code.upper())
        return entries[-1] if entries else None


EMPTY_BOOK = TariffBook.build("empty")
