"""Reference data the operator imports for the statistics: patient residence and population.

Both are CSV files (UTF-8, a header line, comma-separated):

- residence: ``patient_id,kommune`` - the patient's municipality (four-digit kommunenummer; the
  fylke is its first two digits). Stored in ``stats_residence``; a patient imported again gets
  the new municipality, patients not in the file keep theirs.
- population: ``year,kommune,aldersgruppe,kjonn,count`` - inhabitants per municipality, age group
  and sex (``K``/``M``). Stored in ``stats_population``; importing a year replaces every row of
  that year.

Age groups (``AGE_GROUPS``) are 0-15, 16-29, 30-49, 50-66, 67-79, 80-89 and 90+: everybody aged
90 or older is one group (no finer split), and like every other group it is suppressed where it
counts fewer than five persons. A bill whose patient has no known birth date falls in "ukjent".

Imports are all-or-nothing: the whole file is checked first and written in one transaction, and
an error names the file, the line and the column. Errors never echo a patient id (a national
identity number).

The tables are created here (``CREATE TABLE IF NOT EXISTS``, through ``Engine.create_tables``)
in the claims database itself; the claims store does not know them.
"""

from __future__ import annotations

import csv
from pathlib import Path

from gateway.errors import StorageError
from gateway.stats.periods import StatsError
from gateway.store.engine import Engine, Transaction

__all__ = [
    "AGE_GROUPS",
    "SEXES",
    "ensure_tables",
    "import_population",
    "import_residence",
]

#: Age groups as published, youngest first: (label, lowest age, highest age or None).
AGE_GROUP_BOUNDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-15", 0, 15),
    ("16-29", 16, 29),
    ("30-49", 30, 49),
    ("50-66", 50, 66),
    ("67-79", 67, 79),
    ("80-89", 80, 89),
    ("90+", 90, None),
)
AGE_GROUPS: tuple[str, ...] = tuple(label for label, _, _ in AGE_GROUP_BOUNDS)
SEXES = ("K", "M")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stats_residence (
    patient_id  TEXT PRIMARY KEY,
    kommune     TEXT NOT NULL CHECK (length(kommune) = 4)
);
CREATE TABLE IF NOT EXISTS stats_population (
    year          INTEGER NOT NULL,
    kommune       TEXT    NOT NULL CHECK (length(kommune) = 4),
    aldersgruppe  TEXT    NOT NULL,
    kjonn         TEXT    NOT NULL CHECK (kjonn IN ('K', 'M')),
    count         INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (year, kommune, aldersgruppe, kjonn)
);
-- Patients as numbers for the statistics mirror (gateway.stats.mirror), which never holds the
-- national id itself.
CREATE TABLE IF NOT EXISTS stats_patient_numbers (
    number      INTEGER PRIMARY KEY,
    patient_id  TEXT    NOT NULL UNIQUE
);
-- Bumped by every import, so the mirror knows to read the reference data again.
CREATE TABLE IF NOT EXISTS stats_reference_versions (
    name     TEXT    PRIMARY KEY,
    version  INTEGER NOT NULL
);
"""


def ensure_tables(db: Engine) -> None:
    """Create the statistics reference tables if they do not exist yet."""
    try:
        db.create_tables(_SCHEMA)
    except StorageError as exc:
        raise StatsError(f"cannot create the statistics tables: {exc}") from exc


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every data line; the header must hold exactly ``columns``."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise StatsError(f"{where}: cannot read file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise StatsError(f"{where}: not UTF-8 (byte {exc.start})") from exc
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise StatsError(f"{where}: line 1: empty file, expected header {','.join(columns)}")
    names = tuple(h.strip() for h in header)
    missing = [c for c in columns if c not in names]
    unknown = [n for n in names if n not in columns]
    if missing or unknown or len(set(names)) != len(names):
        raise StatsError(
            f"{where}: line 1: header must be {','.join(columns)}"
            + (f"; missing column(s) {', '.join(missing)}" if missing else "")
            + (f"; unknown column(s) {', '.join(unknown)}" if unknown else "")
        )
    rows: list[tuple[int, dict[str, str]]] = []
    for number, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue  # blank line
        if len(fields) != len(names):
            raise StatsError(
                f"{where}: line {number}: expected {len(names)} fields, found {len(fields)}"
            )
        rows.append((number, {n: f.strip() for n, f in zip(names, fields, strict=True)}))
    return rows


def _error(path: Path, line: int, column: str, problem: str) -> StatsError:
    return StatsError(f"{path}: line {line}, column {column}: {problem}")


def _kommune(path: Path, line: int, value: str) -> str:
    if len(value) != 4 or not value.isascii() or not value.isdigit():
        raise _error(path, line, "kommune", f"{value!r} is not a four-digit kommunenummer")
    return value


def import_residence(db: Engine, path: Path | str) -> int:
    """Import patient residence (``patient_id,kommune``); returns the number of patients."""
    file = Path(path)
    rows = _read_rows(file, ("patient_id", "kommune"))
    seen: dict[str, int] = {}
    records: list[tuple[str, str]] = []
    for line, row in rows:
        patient = row["patient_id"]
        if not patient:
            raise _error(file, line, "patient_id", "empty")
        if any(ch.isspace() for ch in patient):
            raise _error(file, line, "patient_id", "contains whitespace")  # value not echoed
        if patient in seen:
            raise _error(file, line, "patient_id", f"same patient as line {seen[patient]}")
        seen[patient] = line
        records.append((patient, _kommune(file, line, row["kommune"])))
    ensure_tables(db)
    try:
        with db.transaction("could not store residence") as tx:
            tx.execute_many(
                "INSERT INTO stats_residence(patient_id, kommune) VALUES (?, ?) "
                "ON CONFLICT(patient_id) DO UPDATE SET kommune = excluded.kommune",
                records,
            )
            _bump(tx, "residence")
    except StorageError as exc:
        raise StatsError(f"{file}: {exc}") from exc
    return len(records)


def _bump(db: Transaction, name: str) -> None:
    db.execute(
        "INSERT INTO stats_reference_versions(name, version) VALUES (?, 1) "
        "ON CONFLICT(name) DO UPDATE SET version = stats_reference_versions.version + 1",
        (name,),
    )


def import_population(db: Engine, path: Path | str) -> int:
    """Import population (``year,kommune,aldersgruppe,kjonn,count``); returns the row count.
    Every year in the file replaces that year's rows."""
    file = Path(path)
    rows = _read_rows(file, ("year", "kommune", "aldersgruppe", "kjonn", "count"))
    seen: dict[tuple[int, str, str, str], int] = {}
    records: list[tuple[int, str, str, str, int]] = []
    for line, row in rows:
        year_text = row["year"]
        if len(year_text) != 4 or not year_text.isascii() or not year_text.isdigit():
            raise _error(file, line, "year", f"{year_text!r} is not a four-digit year")
        year = int(year_text)
        kommune = _kommune(file, line, row["kommune"])
        group = row["aldersgruppe"]
        if group not in AGE_GROUPS:
            raise _error(
                file, line, "aldersgruppe", f"{group!r} is not one of {', '.join(AGE_GROUPS)}"
            )
        sex = row["kjonn"]
        if sex not in SEXES:
            raise _error(file, line, "kjonn", f"{sex!r} is not K or M")
        count_text = row["count"]
        if not count_text.isascii() or not count_text.isdigit():
            raise _error(file, line, "count", f"{count_text!r} is not a whole number >= 0")
        key = (year, kommune, group, sex)
        if key in seen:
            raise _error(file, line, "kommune", f"same year/kommune/group/sex as line {seen[key]}")
        seen[key] = line
        records.append((year, kommune, group, sex, int(count_text)))
    years = sorted({r[0] for r in records})
    ensure_tables(db)
    try:
        with db.transaction("could not store population") as tx:
            tx.execute_many("DELETE FROM stats_population WHERE year = ?", [(y,) for y in years])
            tx.execute_many(
                "INSERT INTO stats_population(year, kommune, aldersgruppe, kjonn, count) "
                "VALUES (?, ?, ?, ?, ?)",
                records,
            )
    except StorageError as exc:
        raise StatsError(f"{file}: {exc}") from exc
    return len(records)
