"""The ``practice_imports`` and ``practice_periods`` tables: the store's side of
``gateway.practices.imports.PracticeImports``.

An import is written in one transaction with all its rows, so a register is in the store whole
or not at all. The rows are kept parsed (one per practice and period) for the rules' register
and for SQL: the view ``practices_in_force`` is the statistics' way in (see ``schema.sql``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date

from gateway.practices.imports import PracticeImport
from gateway.practices.loading import version_of
from gateway.practices.model import Period, Practice
from gateway.store.engine import Engine, Row
from gateway.store.rows import moment, opt_str, stored_moment

__all__ = ["StoredPracticeImports"]

_PERIOD_COLUMNS = (
    "her_id, enh_id, name, practice_type, practitioner_type, specialties, fagomrade, "
    "municipality, valid_from, valid_to, direct_settlement_from, direct_settlement_to, "
    "operating_agreement_from, operating_agreement_to, account, kid, owner_her_id, "
    "mail_address, cpa_id"
)
_IMPORT_COLUMNS = "id, source, format, sha256, rows, imported_at"


class StoredPracticeImports:
    """Every imported register file with its rows; the newest import is in force."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self, source: str, format: str, content: bytes, practices: Sequence[Practice]
    ) -> int:
        """Keep an imported file and its rows in one transaction; in force from now."""
        with self._engine.transaction(f"could not store practice register {source}") as tx:
            import_id = tx.insert(
                "INSERT INTO practice_imports(source, format, sha256, rows, imported_at, "
                "content) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    source,
                    format,
                    hashlib.sha256(content).hexdigest(),
                    len(practices),
                    stored_moment(),
                    content,
                ),
            )
            tx.execute_many(
                f"INSERT INTO practice_periods(import_id, {_PERIOD_COLUMNS}) "
                f"VALUES (?{', ?' * 19})",
                [(import_id, *_period_values(p)) for p in practices],
            )
            return import_id

    def current(self) -> PracticeImport | None:
        row = self._engine.one(
            f"SELECT {_IMPORT_COLUMNS} FROM practice_imports ORDER BY id DESC LIMIT 1"
        )
        return None if row is None else _import(row)

    def history(self) -> list[PracticeImport]:
        rows = self._engine.rows(f"SELECT {_IMPORT_COLUMNS} FROM practice_imports ORDER BY id DESC")
        return [_import(row) for row in rows]

    def rows(self, import_id: int) -> list[Practice]:
        rows = self._engine.rows(
            f"SELECT {_PERIOD_COLUMNS} FROM practice_periods WHERE import_id = ? "
            "ORDER BY her_id, valid_from",
            (import_id,),
        )
        return [_practice(row) for row in rows]

    def version(self) -> str:
        row = self._engine.one("SELECT MAX(id) FROM practice_imports")
        return version_of(None if row is None or row[0] is None else int(row[0]))


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _period_values(p: Practice) -> tuple[object, ...]:
    ds, oa = p.direct_settlement, p.operating_agreement
    return (
        p.her_id,
        p.enh_id,
        p.name,
        p.practice_type,
        p.practitioner_type,
        "|".join(p.specialties),
        p.fagomrade,
        p.municipality,
        p.valid.start.isoformat(),
        _day(p.valid.end),
        _day(ds.start) if ds else None,
        _day(ds.end) if ds else None,
        _day(oa.start) if oa else None,
        _day(oa.end) if oa else None,
        p.account,
        p.kid,
        p.owner_her_id,
        p.mail_address,
        p.cpa_id,
    )


def _opt_day(value: object) -> date | None:
    return None if value is None else date.fromisoformat(str(value))


def _opt_period(start: object, end: object) -> Period | None:
    first = _opt_day(start)
    return None if first is None else Period(first, _opt_day(end))


def _practice(row: Row) -> Practice:
    (her, enh, name, kind, _family, specialties, _main, municipality, vf, vt, dsf, dst, oaf, oat,
     account, kid, owner, mail, cpa) = row  # fmt: skip
    return Practice(
        her_id=str(her),
        name=str(name),
        practice_type=str(kind),
        valid=Period(date.fromisoformat(str(vf)), _opt_day(vt)),
        enh_id=opt_str(enh),
        specialties=tuple(str(specialties).split("|")) if specialties else (),
        municipality=opt_str(municipality),
        direct_settlement=_opt_period(dsf, dst),
        operating_agreement=_opt_period(oaf, oat),
        account=opt_str(account),
        kid=opt_str(kid),
        owner_her_id=opt_str(owner),
        mail_address=opt_str(mail),
        cpa_id=opt_str(cpa),
    )


def _import(row: Row) -> PracticeImport:
    return PracticeImport(
        id=int(row[0]),
        source=str(row[1]),
        format=str(row[2]),
        sha256=str(row[3]),
        rows=int(row[4]),
        imported_at=moment(row[5]),
    )
