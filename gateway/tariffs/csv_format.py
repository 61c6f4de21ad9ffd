"""The CSV formats of gateway's tariff data: takster, the NLK code register, NLK rates.

One format per kind, UTF-8 (a byte-order mark is allowed), comma-separated, with a header row
naming the columns (any order). The kind is recognised from the header (``detect_kind``). Files
are documented for operators in ``fixtures/tariffs/README.md``; in short:

- Empty value = not given (``None``, or the model's default for a flag or a list).
- Dates ISO ``YYYY-MM-DD``; amounts decimal with a point and at most two decimals (``575``,
  ``11.89``); whole numbers for counts, minutes and percentages.
- Flags ``true``/``false``, ``ja``/``nei``, ``1``/``0`` (any case).
- Code lists separated by ``|``. ``invalid_with`` may also be ``alle`` (no other takst on the
  same bill) or ``alle unntatt A|B`` (every other code of the same practitioner type in the same
  file, except A and B).
- ``description``, ``source`` and ``confidence`` may be left out of the header; the other
  columns must all be there, and unknown columns are refused (a misspelt column would otherwise
  silently mean "not given").

Every problem raises ``TariffFileError`` naming the file, the line and the column. Nothing is
half-parsed: a caller gets every row or an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Final, TypeVar

from gateway.tariffs.csv_rows import Row, TariffFileError, first_header, read_rows
from gateway.tariffs.model import PRACTITIONER_TYPES, NlkEntry, NlkRate, TakstEntry

__all__ = [
    "KINDS",
    "NLK_CODE_COLUMNS",
    "NLK_RATE_COLUMNS",
    "TAKST_COLUMNS",
    "TariffFileError",
    "detect_kind",
    "parse_nlk_codes",
    "parse_nlk_rates",
    "parse_takster",
]


# --- Columns ------------------------------------------------------------------------------------

#: Free-text columns a file may leave out.
OPTIONAL_COLUMNS: Final = ("description", "source", "confidence")

TAKST_COLUMNS: Final = (
    "code",
    "practitioner",
    "valid_from",
    "valid_to",
    "honorar",
    "refusjon",
    "egenandel",
    "max_repetitions",
    "repetition_percent",
    "invalid_with",
    "requires_takst",
    "requires_diagnosis",
    "requires_procedure",
    "max_per_year",
    "max_per_year_group",
    "max_per_year_per_patient",
    "min_minutes",
    "minutes_per_repetition",
    "time_based",
    *OPTIONAL_COLUMNS,
)

NLK_CODE_COLUMNS: Final = (
    "code",
    "fagomrade",
    "category",
    "starred",
    "valid_from",
    "valid_to",
    "replaces",
    "list_code",
    "pharmacogenetic",
    *OPTIONAL_COLUMNS,
)

NLK_RATE_COLUMNS: Final = (
    "category",
    "year",
    "kroner",
    "samhandlertype",
    "source",
    "confidence",
)

#: Kind -> its columns. The kind names are those of the store's ``tariff_imports.kind``.
KINDS: Final[dict[str, tuple[str, ...]]] = {
    "takster": TAKST_COLUMNS,
    "nlk_codes": NLK_CODE_COLUMNS,
    "nlk_rates": NLK_RATE_COLUMNS,
}

#: Columns that tell the kinds apart in ``detect_kind``.
_SIGNATURE: Final[dict[str, frozenset[str]]] = {
    "takster": frozenset({"code", "practitioner", "honorar"}),
    "nlk_codes": frozenset({"code", "fagomrade", "category"}),
    "nlk_rates": frozenset({"category", "year", "kroner"}),
}

# --- Value syntax of single kinds ---------------------------------------------------------------

_FIELD = re.compile(r"[A-Z]{2,4}")
_CATEGORY = re.compile(r"[A-Z]+[0-9]+")
_SAMHANDLERTYPE = re.compile(r"[A-Z]{2,4}")
_MIN_YEAR, _MAX_YEAR = 1990, 2199

_T = TypeVar("_T")


def detect_kind(content: bytes, source: str = "tariff file") -> str:
    """Which kind of tariff file ``content`` is, from its header: ``"takster"``,
    ``"nlk_codes"`` or ``"nlk_rates"``."""
    line, header = first_header(content, source)
    kinds = [kind for kind, signature in _SIGNATURE.items() if signature <= header]
    if len(kinds) != 1:
        expected = "; ".join(f"{k}: {', '.join(sorted(s))}" for k, s in _SIGNATURE.items())
        raise TariffFileError(
            source,
            f"cannot tell the kind of tariff file from its header ({expected})",
            line=line,
        )
    return kinds[0]


# --- Takster ------------------------------------------------------------------------------------


def _parse(
    content: bytes, source: str, kind: str, build: Callable[[Row], _T]
) -> list[tuple[Row, _T]]:
    parsed: list[tuple[Row, _T]] = []
    for row in read_rows(content, source, kind, KINDS[kind], OPTIONAL_COLUMNS):
        row.confidence()
        parsed.append((row, build(row)))
    return parsed


def _takst(row: Row) -> tuple[TakstEntry, frozenset[str] | None]:
    code = row.given("code", row.code("code", required=True, what="takst code"))
    practitioner = row.required("practitioner").lower()
    if practitioner not in PRACTITIONER_TYPES:
        raise row.error(
            "practitioner",
            f"{practitioner!r} is not a practitioner type "
            f"({', '.join(sorted(PRACTITIONER_TYPES))})",
        )
    valid_from, valid_to = row.period()
    honorar = row.amount("honorar")
    refusjon = row.amount("refusjon")
    egenandel = row.amount("egenandel")
    if honorar is not None and refusjon is not None and refusjon > honorar:
        raise row.error("refusjon", f"refusjon {refusjon} is more than honorar {honorar}")
    if (
        honorar is not None
        and refusjon is not None
        and egenandel is not None
        and refusjon + egenandel != honorar
    ):
        raise row.error(
            "egenandel", f"honorar {honorar} is not refusjon {refusjon} + egenandel {egenandel}"
        )
    invalid_all, invalid_with, all_except = row.invalid_with("invalid_with")
    max_per_year = row.whole("max_per_year", low=1)
    group = row.codes("max_per_year_group")
    if group and max_per_year is None:
        raise row.error("max_per_year_group", "a group needs max_per_year")
    entry = TakstEntry(
        code=code,
        practitioner=practitioner,
        valid_from=valid_from,
        valid_to=valid_to,
        honorar=honorar,
        refusjon=refusjon,
        egenandel=egenandel,
        max_repetitions=row.whole("max_repetitions"),
        repetition_percent=row.whole("repetition_percent", high=100),
        invalid_with=invalid_with,
        invalid_with_all=invalid_all,
        requires_takst=row.codes("requires_takst"),
        requires_diagnosis=row.flag("requires_diagnosis", False),
        requires_procedure=row.flag("requires_procedure", False),
        max_per_year=max_per_year,
        max_per_year_group=group,
        max_per_year_per_patient=row.flag("max_per_year_per_patient", True),
        min_minutes=row.whole("min_minutes", low=1, high=24 * 60),
        minutes_per_repetition=row.whole("minutes_per_repetition", low=1, high=24 * 60),
        time_based=row.flag("time_based", False),
        description=row.text("description") or "",
    )
    return entry, all_except


def parse_takster(content: bytes, source: str) -> list[TakstEntry]:
    """The takst table in ``content`` (file name ``source`` for messages), in file order."""
    parsed = _parse(content, source, "takster", _takst)
    first_line: dict[tuple[str, str, date], int] = {}
    codes_of: dict[str, dict[str, str]] = {}  # practitioner -> lower code -> code as written
    for row, (entry, _) in parsed:
        key = (entry.practitioner, entry.code.lower(), entry.valid_from)
        if key in first_line:
            raise row.error(
                "valid_from",
                f"takst {entry.code} for {entry.practitioner} from {entry.valid_from} is "
                f"already on line {first_line[key]}",
            )
        first_line[key] = row.line
        codes_of.setdefault(entry.practitioner, {}).setdefault(entry.code.lower(), entry.code)
    entries: list[TakstEntry] = []
    for _, (entry, all_except) in parsed:
        if all_except is not None:
            # "alle unntatt A|B": every other code of the practitioner type in this file.
            allowed = {c.lower() for c in all_except} | {entry.code.lower()}
            others = frozenset(
                written
                for lower, written in codes_of[entry.practitioner].items()
                if lower not in allowed
            )
            entry = replace(entry, invalid_with=others)
        entries.append(entry)
    return entries


# --- NLK register -------------------------------------------------------------------------------


def _nlk(row: Row) -> NlkEntry:
    code = row.given("code", row.code("code", required=True, what="NLK code"))
    fagomrade = row.pattern("fagomrade", _FIELD, "a fagområde code such as MB, MM, IT, KF, MG")
    category = row.pattern("category", _CATEGORY, "a refusjonskategori such as MB2")
    valid_from, valid_to = row.period()
    replaces = row.code("replaces", what="NLK code")
    if replaces is not None and replaces.upper() == code.upper():
        raise row.error("replaces", f"{code} cannot replace itself")
    return NlkEntry(
        code=code,
        fagomrade=fagomrade,
        category=category,
        starred=row.flag("starred", False),
        valid_from=valid_from,
        valid_to=valid_to,
        replaces=replaces,
        list_code=row.flag("list_code", False),
        pharmacogenetic=row.flag("pharmacogenetic", False),
        description=row.text("description") or "",
    )


def parse_nlk_codes(content: bytes, source: str) -> list[NlkEntry]:
    """The NLK code register in ``content``, in file order."""
    parsed = _parse(content, source, "nlk_codes", _nlk)
    first_line: dict[tuple[str, date], int] = {}
    for row, entry in parsed:
        key = (entry.code.upper(), entry.valid_from)
        if key in first_line:
            raise row.error(
                "valid_from",
                f"NLK code {entry.code} from {entry.valid_from} is already on line "
                f"{first_line[key]}",
            )
        first_line[key] = row.line
    return [entry for _, entry in parsed]


# --- NLK rates ----------------------------------------------------------------------------------


def _rate(row: Row) -> NlkRate:
    category = row.pattern("category", _CATEGORY, "a refusjonskategori such as MB2")
    year = row.given("year", row.whole("year", required=True, low=_MIN_YEAR, high=_MAX_YEAR))
    kroner = row.given("kroner", row.amount("kroner", required=True))
    samhandlertype = row.text("samhandlertype") or "PO"
    if not _SAMHANDLERTYPE.fullmatch(samhandlertype):
        raise row.error("samhandlertype", f"{samhandlertype!r} is not a samhandlertype such as PO")
    return NlkRate(category=category, year=year, kroner=kroner, samhandlertype=samhandlertype)


def parse_nlk_rates(content: bytes, source: str) -> list[NlkRate]:
    """The NLK refusjonskategori rates in ``content``, in file order.

    The tariff book holds one rate per category and year, so a second row for the same
    category and year is refused, whatever its samhandlertype.
    """
    parsed = _parse(content, source, "nlk_rates", _rate)
    first_line: dict[tuple[str, int], tuple[int, str]] = {}
    for row, rate in parsed:
        key = (rate.category, rate.year)
        if key in first_line:
            line, samhandlertype = first_line[key]
            raise row.error(
                "year",
                f"{rate.category} {rate.year} already has a rate on line {line} "
                f"(samhandlertype {samhandlertype}); the tariff book holds one rate per "
                "category and year",
            )
        first_line[key] = (row.line, rate.samhandlertype)
    return [rate for _, rate in parsed]
