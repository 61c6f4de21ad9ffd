"""What each kind of delivery holds, as bytes: the same store and period give the same bytes.

Every extract is UTF-8 CSV (``;``, a header line), its rows sorted, and starts with ``#`` lines
naming the delivery, its legal basis, the recipient and the period; nothing in it depends on
when it is made, so running a delivery again (``gateway deliveries run NAME --period P``) gives a
byte-identical file, and the log's SHA-256 proves it.

- **surveillance** (public-health institute): counted bills per treatment day, residence
  municipality and diagnosis code, for the configured diagnoses only; a group of fewer than 5
  distinct patients is ``:`` (however many bills).
- **statistics** (statistics bodies): a published table (``gateway.stats.published``) for the
  period, suppressed as published.
- **research**: one row per counted bill of the period with only the fields the approval names
  (``RESEARCH_FIELDS``); the patient as a keyed HMAC-SHA256 pseudonym (``pasient``) under the
  configured key, whose id is written in the header: a new key (rotation) gives new pseudonyms
  that cannot be linked to the old ones without both keys.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from gateway.deliveries.config import Extract
from gateway.stats.model import MIN_PERSONS
from gateway.stats.periods import Period, parse_period
from gateway.stats.reference import AGE_GROUP_BOUNDS
from gateway.store.engine import Engine, Reader

__all__ = ["Made", "due_period", "make_extract", "pseudonym"]

_INDEX = "CREATE INDEX IF NOT EXISTS deliveries_bills_day ON bills(dato_tid)"

# A bill's diagnosis codes joined by '|', in code order: the one aggregate that is spelt
# differently on each engine.
_DIAGNOSES = {
    "sqlite": "(SELECT group_concat(d.code, '|') FROM (SELECT l.code FROM bill_lines l "
    "WHERE l.bill_id = b.id AND l.kind = 'diagnose' ORDER BY l.code) AS d)",
    "postgresql": "(SELECT string_agg(l.code, '|' ORDER BY l.code) FROM bill_lines l "
    "WHERE l.bill_id = b.id AND l.kind = 'diagnose')",
}

# Counted bills (as the statistics count them) of a period [?, ?).
_SURVEILLANCE = """
SELECT substr(b.dato_tid, 1, 10), COALESCE(r.kommune, 'ukjent'), l.code, COUNT(DISTINCT b.id),
       COUNT(DISTINCT b.patient_id)
FROM bills b JOIN bill_status_effective e ON e.bill_id = b.id
JOIN bill_lines l ON l.bill_id = b.id AND l.kind = 'diagnose'
LEFT JOIN stats_residence r ON r.patient_id = b.patient_id
WHERE b.kreditering = 0 AND b.credited_by IS NULL AND e.status = 'godkjent'
  AND b.dato_tid >= ? AND b.dato_tid < ? AND l.code IN (<marks>)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
_RESEARCH = """
SELECT b.id, b.patient_id, substr(b.dato_tid, 1, 10), r.kommune,
       CAST(substr(b.dato_tid, 1, 4) AS INTEGER)
         - CAST(substr(b.patient_birth_date, 1, 4) AS INTEGER)
         - CASE WHEN substr(b.dato_tid, 6, 5) < substr(b.patient_birth_date, 6, 5)
           THEN 1 ELSE 0 END,
       b.patient_sex, b.practitioner_type, e.approved_ore,
       (SELECT COALESCE(SUM(l.antall), 0) FROM bill_lines l
         WHERE l.bill_id = b.id AND l.kind = 'takst'),
       <diagnoses>
FROM bills b JOIN bill_status_effective e ON e.bill_id = b.id
LEFT JOIN stats_residence r ON r.patient_id = b.patient_id
WHERE b.kreditering = 0 AND b.credited_by IS NULL AND e.status = 'godkjent'
  AND b.dato_tid >= ? AND b.dato_tid < ?
ORDER BY b.dato_tid, b.id
"""


@dataclass(frozen=True, slots=True)
class Made:
    """An extract: its bytes and how many data rows it holds."""

    content: bytes
    rows: int


def due_period(extract: Extract, fire_day: date) -> str:
    """The last whole period before ``fire_day`` (a day, month, tertial or year)."""
    if extract.period == "day":
        return (fire_day - timedelta(days=1)).isoformat()
    if extract.period == "month":
        last = fire_day.replace(day=1) - timedelta(days=1)
        return f"{last.year}-{last.month:02d}"
    if extract.period == "tertial":
        current = (fire_day.month - 1) // 4 + 1
        return f"{fire_day.year}-T{current - 1}" if current > 1 else f"{fire_day.year - 1}-T3"
    return str(fire_day.year - 1)


def _period(text: str) -> Period:
    if len(text) == 10:  # a day
        day = date.fromisoformat(text)
        return Period(text, day, day + timedelta(days=1))
    return parse_period(text)


def pseudonym(patient_id: str, secret: bytes) -> str:
    """The research pseudonym of a patient under one key (hex HMAC-SHA256, 32 characters)."""
    return hmac.new(secret, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]], notes: Sequence[str]) -> Made:
    out = io.StringIO()
    for note in notes:
        out.write(f"# {note}\n")
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return Made(out.getvalue().encode("utf-8"), count)


def _notes(extract: Extract, period: str, *more: str) -> list[str]:
    return [
        f"levering: {extract.name} ({extract.kind})",
        f"hjemmel: {extract.legal_basis}",
        f"mottaker: {extract.recipient}",
        f"periode: {period}",
        *more,
    ]


def make_extract(
    db: Engine,
    extract: Extract,
    period: str,
    *,
    secret: bytes | None = None,
    mirror: Path | None = None,
) -> Made:
    """The extract ``extract`` for ``period`` from the store ``db`` (``mirror``: the statistics
    mirror's directory, for a statistics extract)."""
    if extract.kind == "statistics":
        return _statistics(db, extract, period, mirror)
    span = _period(period)
    db.create_tables(_INDEX)
    if extract.kind == "surveillance":
        return _surveillance(db, extract, span)
    if secret is None:
        raise ValueError(f"research delivery {extract.name} needs its key")
    return _research(db, extract, span, secret)


def _surveillance(db: Reader, extract: Extract, span: Period) -> Made:
    marks = ", ".join("?" * len(extract.diagnoses))
    rows = db.rows(
        _SURVEILLANCE.replace("<marks>", marks),  # placeholders only
        (span.start.isoformat(), span.end.isoformat(), *extract.diagnoses),
    )
    return _csv(
        ("dato", "kommune", "diagnose", "antall"),
        # A group of fewer than 5 persons is suppressed, however many bills they have.
        ((d, k, c, n if persons >= MIN_PERSONS else ":") for d, k, c, n, persons in rows),
        _notes(extract, span.text, f"grupper med under {MIN_PERSONS} personer er prikket (:)"),
    )


def _statistics(db: Engine, extract: Extract, period: str, mirror: Path | None) -> Made:
    from gateway.stats.build import build_table
    from gateway.stats.formats import to_csv
    from gateway.stats.published import PUBLISHED

    published = PUBLISHED[extract.table or ""]
    table = build_table(
        db,
        measure=published.measure,
        by=published.by,
        period=period,
        only=published.only,
        share_of=published.share_of,
        mirror=mirror,
    )
    body = to_csv(table)
    # The published CSV as it is (CRLF lines, decimal comma), after our notes in its line ends
    notes = "".join(f"# {n}\r\n" for n in _notes(extract, period, f"tabell: {published.title}"))
    return Made((notes + body).encode("utf-8"), len(table.cells))


def _age_group(age: int | None) -> str:
    if age is None or age < 0:
        return "ukjent"
    for label, _low, high in AGE_GROUP_BOUNDS:
        if high is None or age <= high:
            return label
    return "ukjent"  # pragma: no cover - the last group is open


def _research(db: Engine, extract: Extract, span: Period, secret: bytes) -> Made:
    sql = _RESEARCH.replace("<diagnoses>", _DIAGNOSES[db.dialect])
    rows = db.rows(sql, (span.start.isoformat(), span.end.isoformat()))

    def values(row: tuple[object, ...]) -> dict[str, object]:
        _id, patient, day, kommune, age, sex, ptype, ore, takster, diagnoses = row
        return {
            "pasient": pseudonym(str(patient), secret),
            "dato": day,
            "kommune": kommune or "ukjent",
            "aldersgruppe": _age_group(None if age is None else int(str(age))),
            "kjonn": sex or "ukjent",
            "praksistype": ptype or "ukjent",
            "takster": takster,
            "diagnoser": diagnoses or "",
            "refusjon": f"{int(str(ore)) / 100:.2f}",
        }

    fields = extract.fields
    data = sorted(tuple(str(values(r)[f]) for f in fields) for r in rows)
    return _csv(
        fields,
        data,
        _notes(extract, span.text, f"godkjenning: {extract.approval}", f"nokkel: {extract.key}"),
    )
