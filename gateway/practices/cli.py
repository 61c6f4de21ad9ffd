"""``gateway practices import|show|convert``: the practice register for operators.

    gateway practices import FILE --config C      import a register file (CSV or JSON), all
                                                  or nothing; in force from the next message
    gateway practices show [HER] [--at DAY] [--json] [--history]
                                                  the register in force (one line a practice),
                                                  one practice's periods, or the imports
    gateway practices convert --config C --out F  the old [practitioners] table and receivers
                                                  file as a register file, to check and import

The command line (``gateway.cli``) opens the store and hands this module its
``PracticeImports``; nothing here knows the store.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from gateway.claims.practitioner import PRACTICE_TYPES
from gateway.practices.importing import import_file
from gateway.practices.imports import PracticeImports
from gateway.practices.legacy import convert, migrate_once
from gateway.practices.loading import load_register
from gateway.practices.model import Period, Practice, PracticeRegister
from gateway.settings import add_config_option

__all__ = ["Legacy", "add_commands", "run"]

@dataclass(frozen=True, slots=True)
class Legacy:
    """The old configuration the register replaces, as the config file has it."""

    practitioners: Mapping[str, str]
    receivers_file: Path | None
    config: Path


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    practices = subparsers.add_parser("practices", help="the practice register")
    sub = practices.add_subparsers(dest="practices_command", required=True)
    imported = sub.add_parser("import", help="import a register file (CSV or JSON)")
    imported.add_argument("file", type=Path)
    show = sub.add_parser("show", help="the register in force, or one practice")
    show.add_argument("her_id", nargs="?", help="one practice's periods")
    show.add_argument("--at", type=date.fromisoformat, help="as of this day (YYYY-MM-DD)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--history", action="store_true", help="the imports, newest first")
    converted = sub.add_parser("convert", help="the old config as a register file")
    converted.add_argument("--out", type=Path, required=True)
    for command in (imported, show, converted):
        add_config_option(command)


def run(args: argparse.Namespace, imports: PracticeImports, legacy: Legacy) -> int:
    """Handle a ``practices`` command."""
    command = args.practices_command
    if command == "convert":
        args.out.write_bytes(convert(legacy.practitioners, legacy.receivers_file))
        print(
            f"wrote {args.out}: check the dates, municipalities and agreements, then "
            f"`gateway practices import --config {legacy.config} {args.out}`"
        )
        return 0
    if command == "import":
        summary = import_file(imports, args.file)
        state = "unchanged, already in force" if summary.unchanged else "imported, in force"
        print(
            f"{args.file}: {summary.rows} rows, {summary.practices} practices: {state} "
            f"(import {summary.import_id})"
        )
        return 0
    migrate_once(imports, legacy.practitioners, legacy.receivers_file, legacy.config, _warn)
    if args.history:
        for stored in imports.history():
            print(
                f"{stored.id:>5}  {stored.imported_at:%Y-%m-%d %H:%M}  {stored.rows:>6} rows  "
                f"{stored.format:<4}  {stored.source}"
            )
        return 0
    register = load_register(imports)
    if not register:
        print("no practice register imported (gateway practices import FILE)")
        return 1
    day: date | None = args.at
    if args.her_id:
        periods = register.periods(args.her_id)
        if not periods:
            print(f"HER id {args.her_id} is not in the register ({register.version})")
            return 1
        shown = [p for p in periods if day is None or p.valid.covers(day)]
        if args.json:
            print(json.dumps([as_json(p) for p in shown], ensure_ascii=False, indent=2))
        else:
            for practice in shown:
                print(details(practice))
        return 0
    rows = _rows(register, day)
    if args.json:
        payload = {"version": register.version, "practices": [as_json(p) for p in rows]}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return 0
    print(f"register {register.version}: {len(register)} practices")
    for practice in rows:
        print(line(practice))
    return 0


def _warn(text: str) -> None:
    print(f"gateway: {text}", file=sys.stderr)


def _rows(register: PracticeRegister, day: date | None) -> list[Practice]:
    """Each practice once: its row on ``day``, or its newest row."""
    rows: list[Practice] = []
    for her in sorted({p.her_id for p in register}):
        found = register.on(her, day) if day is not None else register.latest(her)
        if found is not None:
            rows.append(found)
    return rows


def _period(period: Period | None) -> str:
    return "-" if period is None else period.text()


def line(p: Practice) -> str:
    """One practice on one line."""
    family = p.practitioner_type or "-"
    return (
        f"{p.her_id:<9} {p.practice_type:<26} {family:<22} {p.municipality or '----'}  "
        f"oppgjør {_period(p.direct_settlement):<22} konto {'ja ' if p.account else 'nei'}  "
        f"{p.name}"
    )


def details(p: Practice) -> str:
    """One row of a practice, field by field (Norwegian labels, as case workers read them)."""
    kind = PRACTICE_TYPES[p.practice_type]
    fields = [
        ("HER-id", p.her_id),
        ("Organisasjonsnummer", p.enh_id or "-"),
        ("Navn", p.name),
        ("Praksistype", f"{kind.code} ({kind.name})"),
        ("Regelfamilie", p.practitioner_type or "- (sender ikke krav)"),
        ("Fagområder", ", ".join(p.specialties) or "-"),
        ("Kommune", p.municipality or "ukjent"),
        ("Gyldig", p.valid.text()),
        ("Direkte oppgjør", _period(p.direct_settlement)),
        ("Driftsavtale", _period(p.operating_agreement)),
        ("Kontonummer", p.account or "mangler (utbetalinger holdes tilbake)"),
        ("KID", p.kid or "-"),
        ("Eier (helseforetak)", p.owner_her_id or "-"),
        ("E-post for vedtak", p.mail_address or "-"),
        ("CPA", p.cpa_id or "-"),
    ]
    if kind.egenandel_only:
        fields.append(("Merk", "rapporterer bare egenandeler; får aldri refusjon"))
    return "\n".join(f"  {label + ':':<22}{value}" for label, value in fields) + "\n"


def as_json(p: Practice) -> dict[str, object]:
    """A practice for ``--json``: the register's field names."""

    def period(value: Period | None) -> dict[str, str | None] | None:
        if value is None:
            return None
        return {"from": value.start.isoformat(), "to": value.end.isoformat() if value.end else None}

    return {
        "her_id": p.her_id,
        "enh_id": p.enh_id,
        "name": p.name,
        "practice_type": p.practice_type,
        "practitioner_type": p.practitioner_type,
        "specialties": list(p.specialties),
        "municipality": p.municipality,
        "valid": period(p.valid),
        "direct_settlement": period(p.direct_settlement),
        "operating_agreement": period(p.operating_agreement),
        "account": p.account,
        "kid": p.kid,
        "owner_her_id": p.owner_her_id,
        "mail_address": p.mail_address,
        "cpa_id": p.cpa_id,
    }
