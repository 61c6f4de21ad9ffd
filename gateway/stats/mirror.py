"""The statistics mirror: the bills' statistics columns as numpy arrays on disk, kept up to date.

A published table over ten million bills must be made in seconds; SQLite needs about 30 s only to
group ten million rows once on this kind of machine. So the statistics read the bills once into
a column store beside the database (``<database>.stats/``: ``manifest.json`` and one ``.npy``
file per column) and from then on only what changed (``sync``):

- **new bills**: ids above the last one read;
- **changed bills**: those with an override newer than the last one read, and the originals a
  new credit consumed (``facts.changed_bill_ids``); their rows are read again and replaced;
- **residence** (``stats_residence``): read again per patient when an import changed it
  (``stats_reference_versions``), else only for new patients.

The arrays hold no national id: patients are numbers (``stats_patient_numbers`` in the claims
database keeps the mapping). A sync writes a new generation of files and then the manifest
(atomically), so a reader always sees one whole generation; the previous one is removed after.
An exclusive lock (``flock`` on ``.lock``) keeps two syncs from interleaving. Reading the
manifest of another format or contact-type classification starts the mirror afresh.

``Facts`` is what the tables are computed from (``gateway.stats.cube``): the per-bill columns,
the per-patient municipality and the dictionaries. ``load_facts`` reads a whole database into
memory without a mirror (small stores, tests).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.files import write_atomically
from gateway.stats.contact_types import Classification, classification
from gateway.stats.facts import (
    COLUMNS,
    Array,
    Columns,
    Dictionary,
    changed_bill_ids,
    number_patients,
    read_bills,
)
from gateway.stats.periods import StatsError
from gateway.stats.reference import ensure_tables
from gateway.store.database import Database
from gateway.store.engine import Engine, Reader

__all__ = ["Facts", "load_facts", "mirror_directory", "sync"]

FORMAT = 1
#: Bills read per SQL statement (bounded memory for a first sync of a large store).
CHUNK = 200_000


@dataclass
class Facts:
    """Everything a table is computed from."""

    columns: Columns
    #: Per patient number: the code of the residence municipality in ``kommuner``, -1 unknown.
    residence: Array
    kommuner: Dictionary
    ptypes: Dictionary
    senders: Dictionary
    classification: Classification


def mirror_directory(database: Database) -> Path | None:
    """Where the mirror of ``database`` lives: beside a SQLite file. None for PostgreSQL (its
    instances share no directory): the statistics then read the bills afresh (``load_facts``)."""
    if database.path is None:
        return None
    return database.path.with_name(database.path.name + ".stats")


@dataclass
class _Marks:
    bills: int = 0
    overrides: int = 0
    residence: int = 0


def _current_marks(db: Reader) -> _Marks:
    (bills,) = db.one("SELECT COALESCE(MAX(id), 0) FROM bills") or (0,)
    (overrides,) = db.one("SELECT COALESCE(MAX(id), 0) FROM overrides") or (0,)
    row = db.one("SELECT version FROM stats_reference_versions WHERE name = 'residence'")
    return _Marks(int(bills), int(overrides), int(row[0]) if row else 0)


def _read_new(
    db: Engine,
    facts: Facts,
    after: int,
    upto: int,
    report: Callable[[str], None],
) -> None:
    start = after
    while start < upto:
        end = min(upto, start + CHUNK)
        with db.transaction("could not number the patients") as tx:
            number_patients(tx, start, end)
        facts.columns = facts.columns.append(
            read_bills(db, facts.classification, facts.ptypes, facts.senders, after=start, upto=end)
        )
        report(f"leser regninger til id {end} av {upto}")
        start = end


def _read_residence(db: Reader, facts: Facts, from_number: int) -> None:
    """Residence of the patients numbered above ``from_number`` (all with 0)."""
    (count,) = db.one("SELECT COALESCE(MAX(number), 0) FROM stats_patient_numbers") or (0,)
    residence = np.full(int(count) + 1, -1, dtype=np.int16)
    keep = min(from_number + 1, len(facts.residence))
    residence[:keep] = facts.residence[:keep]
    rows = db.rows(
        "SELECT n.number, r.kommune FROM stats_patient_numbers n "
        "JOIN stats_residence r ON r.patient_id = n.patient_id WHERE n.number > ?",
        (from_number,),
    )
    if rows:
        numbers, kommuner = zip(*rows, strict=True)
        residence[np.array(numbers, dtype=np.int64)] = [facts.kommuner.code(k) for k in kommuner]
    facts.residence = residence


def _fresh(kind: Classification) -> Facts:
    return Facts(
        Columns.empty(), np.full(1, -1, np.int16), Dictionary(), Dictionary(), Dictionary(), kind
    )


def load_facts(db: Engine) -> Facts:
    """The whole database read into memory (no mirror on disk)."""
    ensure_tables(db)
    facts = _fresh(classification())
    marks = _current_marks(db)
    _read_new(db, facts, 0, marks.bills, lambda _m: None)
    _read_residence(db, facts, 0)
    return facts


# --- the mirror on disk --------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load(directory: Path, kind: Classification) -> tuple[Facts, _Marks, int] | None:
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StatsError(f"{directory}: unreadable statistics mirror: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("classification") != kind.version:
        return None
    generation = int(manifest["generation"])
    arrays = {
        name: np.load(directory / f"{generation}-{name}.npy", mmap_mode="r")
        for name in [*COLUMNS, "residence"]
    }
    # Memory-mapped, read-only: a sync that changes something copies first (``_writable``).
    facts = Facts(
        Columns({name: arrays[name] for name in COLUMNS}),
        arrays["residence"],
        Dictionary(list(manifest["kommuner"])),
        Dictionary(list(manifest["ptypes"])),
        Dictionary(list(manifest["senders"])),
        kind,
    )
    marks = _Marks(**manifest["marks"])
    return facts, marks, generation


def _save(directory: Path, facts: Facts, marks: _Marks, generation: int) -> None:
    for name in COLUMNS:
        _save_array(directory / f"{generation}-{name}.npy", facts.columns[name])
    _save_array(directory / f"{generation}-residence.npy", facts.residence)
    manifest = {
        "format": FORMAT,
        "generation": generation,
        "classification": facts.classification.version,
        "marks": {"bills": marks.bills, "overrides": marks.overrides, "residence": marks.residence},
        "kommuner": facts.kommuner.values,
        "ptypes": facts.ptypes.values,
        "senders": facts.senders.values,
        "rows": len(facts.columns),
    }
    write_atomically(directory / "manifest.json", json.dumps(manifest).encode("utf-8"))
    for old in directory.glob("*.npy"):
        if not old.name.startswith(f"{generation}-"):
            old.unlink(missing_ok=True)


def _save_array(path: Path, array: Array) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        np.save(out, array)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)


def sync(
    db: Engine,
    directory: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> Facts:
    """Bring the mirror in ``directory`` up to date with ``db`` and return its facts."""
    ensure_tables(db)
    report = progress or (lambda _message: None)
    kind = classification()
    with _locked(directory):
        loaded = _load(directory, kind)
        if loaded is None:
            facts, seen, generation = _fresh(kind), _Marks(), 0
        else:
            facts, seen, generation = loaded
        now = _current_marks(db)
        if now == seen:
            return facts
        report("oppdaterer statistikkspeilet")
        facts.columns = Columns({n: np.array(a) for n, a in facts.columns.arrays.items()})
        changed = changed_bill_ids(db, seen.bills, seen.overrides, now.overrides)
        if changed:
            facts.columns.update(read_bills(db, kind, facts.ptypes, facts.senders, ids=changed))
        patients_before = len(facts.residence) - 1
        _read_new(db, facts, seen.bills, now.bills, report)
        _read_residence(db, facts, 0 if now.residence != seen.residence else patients_before)
        _save(directory, facts, now, generation + 1)
        return facts
