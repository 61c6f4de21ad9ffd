"""Reading a tariff CSV file into checked rows: decoding, CSV records, the header, and the
syntax of every kind of value (codes, dates, amounts, flags, code lists).

``gateway.tariffs.csv_format`` says which columns each kind of file has and builds its entries
from these rows. Every problem raises ``TariffFileError`` naming the file, the line and the
column.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from gateway.errors import GatewayError

__all__ = ["Row", "TariffFileError", "first_header", "read_rows"]


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


# --- Value syntax -------------------------------------------------------------------------------

_CODE = re.compile(r"[0-9A-Za-z]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
_WHOLE = re.compile(r"[0-9]+")
_CONFIDENCE = re.compile(r"high|medium|low|illustrative|carried forward from [0-9]{4}")
_TRUE = frozenset({"true", "ja", "1"})
_FALSE = frozenset({"false", "nei", "0"})
_ALL = "alle"
_ALL_EXCEPT = "alle unntatt"

#: A limit that catches typos (a takst repeated 10,000 times is a slip of the keyboard).
_MAX_COUNT = 9999

_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Row:
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


def read_rows(
    content: bytes, source: str, kind: str, columns: Sequence[str], optional: Sequence[str]
) -> list[Row]:
    """The data rows of a ``kind`` file whose header must name every one of ``columns`` but
    the ``optional`` ones, and no other."""
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
    missing = [c for c in columns if c not in seen and c not in optional]
    if missing:
        raise TariffFileError(
            source,
            f"the {kind} header lacks the column(s) {', '.join(missing)}",
            line=header_line,
        )
    rows: list[Row] = []
    for line, fields in records:
        if len(fields) != len(header):
            raise TariffFileError(
                source,
                f"the row has {len(fields)} fields but the header has {len(header)} "
                "(a value containing a comma must be in double quotes)",
                line=line,
            )
        rows.append(Row(source, line, {n: f.strip() for n, f in zip(header, fields, strict=True)}))
    if not rows:
        raise TariffFileError(
            source, "the file has a header but no data rows (refusing to import an empty table)"
        )
    return rows


def first_header(content: bytes, source: str) -> tuple[int, frozenset[str]]:
    """(line, column names) of the header row, before any row is checked."""
    first = next(_records(_decode(content, source), source), None)
    if first is None:
        raise TariffFileError(source, "the file is empty (a header row and data rows expected)")
    line, fields = first
    return line, frozenset(_header(fields))
