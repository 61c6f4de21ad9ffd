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

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Final, TypeVar

from gateway.errors import GatewayError
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


class TariffFileError(GatewayError):
    """A tariff data file cannot be used; the message says where and what (for operators)."""

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        where = source
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.column = column
        self.problem = problem


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

# --- Value syntax -------------------------------------------------------------------------------

_CODE = re.compile(r"[0-9A-Za-z]+")
_FIELD = re.compile(r"[A-Z]{2,4}")
_CATEGORY = re.compile(r"[A-Z]+[0-9]+")
_SAMHANDLERTYPE = re.compile(r"[A-Z]{2,4}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
_WHOLE = re.compile(r"[0-9]+")
_CONFIDENCE = re.compile(r"high|medium|low|illustrative|carried forward from [0-9]{4}")
_TRUE = frozenset({"true", "ja", "1"})
_FALSE = frozenset({"false", "nei", "0"})
_ALL = "alle"
_ALL_EXCEPT = "alle unntatt"

#: Limits that catch typos (a takst repeated 10,000 times is a slip of the keyboard).
_MAX_COUNT = 9999
_MIN_YEAR, _MAX_YEAR = 1990, 2199


_T = TypeVar("_T")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class _Row:
    """One data row, with what an error message needs to point at it."""

    source: str
    line: int
    values: dict[str, str]

    def error(self, column: str | None, problem: str) -> TariffFileError:
        return TariffFileError(self.source, problem, line=self.line, column=column)

    def text(self, column: str) -> str | None:
        value = self.values.get(column, "")
        return value or None

    def given(self, column: str, value: _V | None) -> _V:
        """``value``, which a parser read from a required ``column``."""
        if value is None:  # pragma: no cover - required=True parsers raise first
            raise self.error(column, "a value is required")
        return value

    def required(self, column: str) -> str:
        value = self.text(column)
        if value is None:
            raise self.error(column, "a value is required")
        return value

    def code(self, column: str, *, required: bool = False, what: str = "code") -> str | None:
        value = self.required(column) if required else self.text(column)
        if value is not None and not _CODE.fullmatch(value):
            raise self.error(column, f"{value!r} is not a {what} (letters and digits only)")
        return value

    def pattern(self, column: str, regex: re.Pattern[str], expected: str) -> str:
        value = self.required(column)
        if not regex.fullmatch(value):
            raise self.error(column, f"{value!r} is not {expected}")
        return value

    def day(self, column: str, *, required: bool = False) -> date | None:
        value = self.required(column) if required else self.text(column)
        if value is None:
            return None
        if not _DATE.fullmatch(value):
            raise self.error(column, f"{value!r} is not a date in the form YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.error(column, f"{value!r} is not a valid date") from None

    def amount(self, column: str, *, required: bool = False) -> Decimal | None:
        value = self.required(column) if required else self.text(column)
        if value is None:
            return None
        if not _AMOUNT.fullmatch(value):
            if value.startswith("-"):
                problem = f"{value!r}: an amount must not be negative"
            elif "," in value and _AMOUNT.fullmatch(value.replace(",", ".", 1)):
                fixed = value.replace(",", ".", 1)
                problem = f"{value!r}: use a point as the decimal separator ({fixed})"
            elif re.fullmatch(r"[0-9]+\.[0-9]{3,}", value):
                problem = f"{value!r}: an amount has at most two decimals (øre)"
            else:
                problem = f"{value!r} is not an amount in kroner (digits, optional .øre)"
            raise self.error(column, problem)
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
            raise self.error(column, f"{value!r} is not an amount") from None

    def whole(
        self, column: str, *, required: bool = False, low: int = 0, high: int = _MAX_COUNT
    ) -> int | None:
        value = self.required(column) if required else self.text(column)
        if value is None:
            return None
        if not _WHOLE.fullmatch(value):
            raise self.error(column, f"{value!r} is not a whole number")
        number = int(value)
        if not low <= number <= high:
            raise self.error(column, f"{number} is outside {low}..{high}")
        return number

    def flag(self, column: str, default: bool) -> bool:
        value = self.text(column)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise self.error(column, f"{value!r} is not true/false (also ja/nei, 1/0)")

    def codes(self, column: str) -> frozenset[str]:
        value = self.text(column)
        if value is None:
            return frozenset()
        return frozenset(self._code_list(column, value))

    def _code_list(self, column: str, value: str) -> list[str]:
        codes = [part.strip() for part in value.split("|")]
        for code in codes:
            if not code:
                raise self.error(column, f"{value!r} has an empty code (check the '|' separators)")
            if not _CODE.fullmatch(code):
                raise self.error(
                    column,
                    f"{code!r} is not a code (letters and digits only; separate codes with '|')",
                )
        return codes

    def invalid_with(self, column: str) -> tuple[bool, frozenset[str], frozenset[str] | None]:
        """(invalid_with_all, invalid_with, exceptions of "alle unntatt" or None)."""
        value = self.text(column)
        if value is None:
            return False, frozenset(), None
        lowered = value.lower()
        if lowered == _ALL:
            return True, frozenset(), None
        if lowered.startswith(_ALL_EXCEPT):
            rest = value[len(_ALL_EXCEPT) :].strip()
            if not rest:
                raise self.error(column, "'alle unntatt' needs the codes that are allowed")
            return False, frozenset(), frozenset(self._code_list(column, rest))
        if lowered.startswith(_ALL):
            raise self.error(
                column, f"{value!r}: write 'alle', or 'alle unntatt A|B', or a list of codes"
            )
        return False, frozenset(self._code_list(column, value)), None

    def confidence(self) -> None:
        value = self.text("confidence")
        if value is not None and not _CONFIDENCE.fullmatch(value):
            raise self.error(
                "confidence",
                f"{value!r} is not one of high, medium, low, illustrative, "
                "'carried forward from YYYY'",
            )

    def period(self) -> tuple[date, date | None]:
        valid_from = self.given("valid_from", self.day("valid_from", required=True))
        valid_to = self.day("valid_to")
        if valid_to is not None and valid_to < valid_from:
            raise self.error("valid_to", f"{valid_to} is before valid_from {valid_from}")
        return valid_from, valid_to


# --- Reading ------------------------------------------------------------------------------------


def _decode(content: bytes, source: str) -> str:
    if content.startswith(codecs.BOM_UTF8):
        content = content[len(codecs.BOM_UTF8) :]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise TariffFileError(
            source, "the file is not UTF-8 (save it as UTF-8 CSV)", line=line
        ) from None


def _records(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of every non-blank CSV record."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TariffFileError(source, f"not valid CSV: {exc}", line=previous + 1) from None
        start, previous = previous + 1, reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        yield start, fields


def _header(fields: Sequence[str]) -> list[str]:
    return [f.strip().lower() for f in fields]


def _rows(content: bytes, source: str, kind: str) -> list[_Row]:
    columns = KINDS[kind]
    records = _records(_decode(content, source), source)
    first = next(records, None)
    if first is None:
        raise TariffFileError(source, "the file is empty (a header row and data rows expected)")
    header_line, raw_header = first
    header = _header(raw_header)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise TariffFileError(
                source, "the header names this column twice", line=header_line, column=name
            )
        if name not in columns:
            raise TariffFileError(
                source,
                f"unknown column in the {kind} header (known: {', '.join(columns)})",
                line=header_line,
                column=name,
            )
        seen.add(name)
    missing = [c for c in columns if c not in seen and c not in OPTIONAL_COLUMNS]
    if missing:
        raise TariffFileError(
            source,
            f"the {kind} header lacks the column(s) {', '.join(missing)}",
            line=header_line,
        )
    rows: list[_Row] = []
    for line, fields in records:
        if len(fields) != len(header):
            raise TariffFileError(
                source,
                f"the row has {len(fields)} fields but the header has {len(header)} "
                "(a value containing a comma must be in double quotes)",
                line=line,
            )
        rows.append(_Row(source, line, {n: f.strip() for n, f in zip(header, fields, strict=True)}))
    if not rows:
        raise TariffFileError(
            source, "the file has a header but no data rows (refusing to import an empty table)"
        )
    return rows


def detect_kind(content: bytes, source: str = "tariff file") -> str:
    """Which kind of tariff file ``content`` is, from its header: ``"takster"``,
    ``"nlk_codes"`` or ``"nlk_rates"``."""
    first = next(_records(_decode(content, source), source), None)
    if first is None:
        raise TariffFileError(source, "the file is empty (a header row and data rows expected)")
    line, fields = first
    header = frozenset(_header(fields))
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
    content: bytes, source: str, kind: str, build: Callable[[_Row], _T]
) -> list[tuple[_Row, _T]]:
    parsed: list[tuple[_Row, _T]] = []
    for row in _rows(content, source, kind):
        row.confidence()
        parsed.append((row, build(row)))
    return parsed


def _takst(row: _Row) -> tuple[TakstEntry, frozenset[str] | None]:
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


def _nlk(row: _Row) -> NlkEntry:
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


def _rate(row: _Row) -> NlkRate:
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
