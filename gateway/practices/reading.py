"""Reading a practice register file (CSV or JSON) into checked ``Practice`` rows: all or nothing.

The format is recognised from the content: a file whose first character (after a byte-order
mark and white space) is ``[`` or ``{`` is JSON, anything else CSV. Both carry the same fields
(``COLUMNS``), described for operators in ``fixtures/practices/README.md``:

- CSV: UTF-8, comma-separated, a header row naming the columns (any order); every column of
  ``REQUIRED_COLUMNS`` must be in it, the others may be left out, an unknown one is refused (a
  misspelt column would otherwise silently mean "not given"). ``specialties`` are separated by
  ``|``. Empty = not given.
- JSON: a list of objects, or ``{"practices": [...]}``; string values (``specialties`` may be a
  list of strings), ``null`` or a missing key = not given, an unknown key is refused.

Every problem raises ``PracticeFileError`` naming the file, the line (CSV) or the entry (JSON),
and the field. The whole file is checked (each row, then the rows together: overlapping periods
of one practice, owners that are not in the file) before anyone gets a row.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from gateway.claims.practitioner import (
    AMBIGUOUS_KUHR_CODES,
    KUHR_CODE_SPECIALTY,
    SPECIALTIES,
    practice_type,
)
from gateway.errors import GatewayError
from gateway.practices.accounts import valid_account, valid_kid, valid_organisation_number
from gateway.practices.model import Period, Practice

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "PracticeFileError",
    "detect_format",
    "parse_practices",
]


class PracticeFileError(GatewayError):
    """A practice register file cannot be used; the message says where and what."""

    def __init__(self, source: str, problem: str, *, where: str = "", field: str = "") -> None:
        text = source + (f", {where}" if where else "") + (f", field {field!r}" if field else "")
        super().__init__(f"{text}: {problem}")
        self.source = source
        self.problem = problem


#: Every field of a register row, in the order ``gateway practices show`` and the sample use.
COLUMNS: Final = (
    "her_id",
    "enh_id",
    "name",
    "practice_type",
    "specialties",
    "municipality",
    "valid_from",
    "valid_to",
    "direct_settlement_from",
    "direct_settlement_to",
    "operating_agreement_from",
    "operating_agreement_to",
    "account",
    "kid",
    "owner_her_id",
    "mail_address",
    "cpa_id",
    "note",
)
#: Columns a CSV header must name. The direct-settlement agreement is among them: without it
#: every refund would be refused, so a file that forgot the column is refused instead.
REQUIRED_COLUMNS: Final = (
    "her_id",
    "name",
    "practice_type",
    "valid_from",
    "direct_settlement_from",
)

_DIGITS = re.compile(r"[0-9]+")
_MUNICIPALITY = re.compile(r"[0-9]{4}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MAIL = re.compile(r"[^@\s]+@[^@\s]+")


def detect_format(content: bytes) -> str:
    """``json`` or ``csv``, from the first character of the content."""
    text = content[len(codecs.BOM_UTF8) :] if content.startswith(codecs.BOM_UTF8) else content
    stripped = text.lstrip()
    return "json" if stripped[:1] in (b"[", b"{") else "csv"


@dataclass(frozen=True, slots=True)
class _Entry:
    """One row or object: its values as text, and how to point at it in an error."""

    source: str
    where: str  # "line 4" or "entry 3"
    values: Mapping[str, str]

    def error(self, field: str, problem: str) -> PracticeFileError:
        return PracticeFileError(self.source, problem, where=self.where, field=field)

    def text(self, field: str) -> str | None:
        return self.values.get(field) or None

    def required(self, field: str) -> str:
        value = self.text(field)
        if value is None:
            raise self.error(field, "a value is required")
        return value

    def digits(self, field: str, *, required: bool = False) -> str | None:
        value = self.required(field) if required else self.text(field)
        if value is not None and not _DIGITS.fullmatch(value):
            raise self.error(field, f"{value!r} is not digits")
        return value

    def day(self, field: str, *, required: bool = False) -> date | None:
        value = self.required(field) if required else self.text(field)
        if value is None:
            return None
        if not _DATE.fullmatch(value):
            raise self.error(field, f"{value!r} is not a date in the form YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.error(field, f"{value!r} is not a valid date") from None

    def period(self, prefix: str, *, required: bool = False) -> Period | None:
        start_field = "valid_from" if prefix == "valid" else f"{prefix}_from"
        end_field = "valid_to" if prefix == "valid" else f"{prefix}_to"
        start = self.day(start_field, required=required)
        end = self.day(end_field)
        if start is None:
            if end is not None:
                raise self.error(end_field, f"an end without a start ({start_field} is empty)")
            return None
        if end is not None and end < start:
            raise self.error(end_field, f"{end} is before {start_field} {start}")
        return Period(start, end)


def _practice(entry: _Entry) -> Practice:
    her_id = entry.digits("her_id", required=True) or ""
    enh_id = entry.digits("enh_id")
    if enh_id is not None and not valid_organisation_number(enh_id):
        raise entry.error("enh_id", f"{enh_id!r} is not an organisation number (9 digits, MOD11)")
    written = entry.required("practice_type")
    kind = practice_type(written)
    if kind is None:
        if written.upper() in AMBIGUOUS_KUHR_CODES:
            choices = " or ".join(AMBIGUOUS_KUHR_CODES[written.upper()])
            raise entry.error("practice_type", f"KUHR's {written!r} is ambiguous: write {choices}")
        raise entry.error(
            "practice_type",
            f"{written!r} is not a practice type (see fixtures/practices/README.md)",
        )
    specialties = _specialties(entry, written, kind.code)
    valid = entry.period("valid", required=True)
    assert valid is not None  # required above
    operating = entry.period("operating_agreement")
    if operating is not None and not kind.operating_agreement:
        raise entry.error(
            "operating_agreement_from", f"a {kind.code} has no driftsavtale in the register"
        )
    owner = entry.digits("owner_her_id")
    if owner is not None and not kind.owned:
        raise entry.error("owner_her_id", f"only a poliklinikk has an owner, not a {kind.code}")
    if owner == her_id:
        raise entry.error("owner_her_id", "a practice cannot own itself")
    municipality = entry.text("municipality")
    if municipality is not None and not _MUNICIPALITY.fullmatch(municipality):
        raise entry.error("municipality", f"{municipality!r} is not a kommunenummer (4 digits)")
    account = entry.text("account")
    if account is not None and not valid_account(account):
        raise entry.error(
            "account", f"{account!r} is not an account number (11 digits, valid MOD11)"
        )
    kid = entry.text("kid")
    if kid is not None:
        if account is None:
            raise entry.error("kid", "a KID needs an account")
        if not valid_kid(kid):
            raise entry.error("kid", f"{kid!r} is not a KID (2-25 digits, MOD10 or MOD11)")
    mail = entry.text("mail_address")
    if mail is not None and not _MAIL.fullmatch(mail):
        raise entry.error("mail_address", f"{mail!r} is not a mail address")
    return Practice(
        her_id=her_id,
        name=entry.required("name"),
        practice_type=kind.code,
        valid=valid,
        enh_id=enh_id,
        specialties=specialties,
        municipality=municipality,
        direct_settlement=entry.period("direct_settlement"),
        operating_agreement=operating,
        account=account,
        kid=kid,
        owner_her_id=owner,
        mail_address=mail,
        cpa_id=entry.text("cpa_id"),
    )


def _specialties(entry: _Entry, written: str, kind: str) -> tuple[str, ...]:
    allowed = practice_type(kind)
    assert allowed is not None
    value = entry.text("specialties") or ""
    codes = [c.strip().lower() for c in value.split("|")] if value else []
    implied = KUHR_CODE_SPECIALTY.get(written.upper())
    if implied is not None and implied not in codes:
        codes.insert(0, implied)
    for code in codes:
        if not code:
            raise entry.error("specialties", f"{value!r} has an empty specialty (check the '|')")
        if code not in SPECIALTIES:
            raise entry.error("specialties", f"{code!r} is not a specialty")
        if code not in allowed.specialties:
            raise entry.error("specialties", f"a {kind} cannot have the specialty {code!r}")
    if len(set(codes)) != len(codes):
        raise entry.error("specialties", "a specialty is listed twice")
    if allowed.specialty_required and not codes:
        raise entry.error(
            "specialties",
            f"a {kind} needs its specialties (e.g. medisinsk_biokjemi, radiologi, psykiatri)",
        )
    return tuple(codes)


# --- whole files -----------------------------------------------------------------------------


def _decode(content: bytes, source: str) -> str:
    if content.startswith(codecs.BOM_UTF8):
        content = content[len(codecs.BOM_UTF8) :]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise PracticeFileError(source, "the file is not UTF-8", where=f"line {line}") from None


def _csv_entries(text: str, source: str) -> Iterator[_Entry]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    try:
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            where = f"line {reader.line_num}"
            if header is None:
                header = [f.strip().lower() for f in fields]
                _check_names(header, source, where, required=REQUIRED_COLUMNS)
                continue
            if len(fields) != len(header):
                raise PracticeFileError(
                    source,
                    f"the row has {len(fields)} fields but the header {len(header)} (a value "
                    "with a comma must be in double quotes)",
                    where=where,
                )
            yield _Entry(source, where, {n: f.strip() for n, f in zip(header, fields, strict=True)})
    except csv.Error as exc:
        raise PracticeFileError(source, f"not valid CSV: {exc}") from None
    if header is None:
        raise PracticeFileError(source, "the file is empty (a header row and rows expected)")


def _json_entries(text: str, source: str) -> Iterator[_Entry]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}"
        raise PracticeFileError(source, f"not valid JSON: {exc.msg}", where=where) from None
    if isinstance(data, dict) and set(data) == {"practices"}:
        data = data["practices"]
    if not isinstance(data, list):
        raise PracticeFileError(source, 'expected a list of practices, or {"practices": [...]}')
    for number, item in enumerate(data, start=1):
        where = f"entry {number}"
        if not isinstance(item, dict):
            raise PracticeFileError(source, "each practice must be an object", where=where)
        _check_names(list(item), source, where, required=())
        yield _Entry(source, where, {k: _json_text(source, where, k, v) for k, v in item.items()})


def _json_text(source: str, where: str, key: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if key == "specialties" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "|".join(v.strip() for v in value)
    raise PracticeFileError(
        source, f"must be a string (or null), got {json.dumps(value)}", where=where, field=key
    )


def _check_names(names: Sequence[str], source: str, where: str, required: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise PracticeFileError(source, "named twice", where=where, field=name)
        if name not in COLUMNS:
            raise PracticeFileError(
                source, f"unknown field (known: {', '.join(COLUMNS)})", where=where, field=name
            )
        seen.add(name)
    missing = [c for c in required if c not in seen]
    if missing:
        raise PracticeFileError(source, f"the header lacks {', '.join(missing)}", where=where)


def parse_practices(content: bytes, source: str) -> list[Practice]:
    """Every row of a register file, checked alone and together; raises ``PracticeFileError``."""
    text = _decode(content, source)
    reader = _json_entries if detect_format(content) == "json" else _csv_entries
    parsed = [(entry, _practice(entry)) for entry in reader(text, source)]
    if not parsed:
        raise PracticeFileError(source, "no practices (refusing to import an empty register)")
    _check_together(parsed, source)
    return [practice for _, practice in parsed]


def _check_together(parsed: Sequence[tuple[_Entry, Practice]], source: str) -> None:
    by_her: dict[str, list[tuple[_Entry, Practice]]] = {}
    for entry, practice in parsed:
        for earlier_entry, earlier in by_her.get(practice.her_id, []):
            if earlier.valid.overlaps(practice.valid):
                raise entry.error(
                    "valid_from",
                    f"HER id {practice.her_id} is already valid {earlier.valid.text()} "
                    f"({earlier_entry.where}); the periods of one practice may not overlap",
                )
        by_her.setdefault(practice.her_id, []).append((entry, practice))
    for entry, practice in parsed:
        owner = practice.owner_her_id
        if owner is None:
            continue
        owners = by_her.get(owner, [])
        if not owners:
            raise entry.error("owner_her_id", f"{owner} is not in the register")
        if any(p.practice_type != "helseforetak" for _, p in owners):
            raise entry.error("owner_her_id", f"{owner} is not a helseforetak")
