"""The configuration the register replaces: the ``[practitioners]`` table and the payout
receivers file (TOML, ``payout.receivers_file``), and the way from them to a register file.

Neither is read for claims or payouts any more. When either is configured, ``announce`` says so
at start and names the command that turns them into a register file
(``gateway practices convert``); ``convert`` writes that file. ``migrate_once`` imports that
conversion by itself when no register has been imported yet, so an upgraded gateway keeps
deciding as before. The old behaviour had no agreements, so the converted rows assume a
direct-settlement agreement (and a physiotherapist's driftsavtale) from ``ASSUMED_SINCE``:
importing them changes no decision, and the operator corrects dates, municipalities and
agreements in a register file of their own. A receiver the old ``[practitioners]`` table did not
type becomes ``uavklart``: its bills keep taking their type from the MsgHead.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from gateway.claims.practitioner import PRACTICE_TYPES, UNRESOLVED
from gateway.errors import ConfigurationError
from gateway.logs import get_logger
from gateway.practices.imports import PracticeImports
from gateway.practices.model import Period, Practice, PracticeRegister
from gateway.practices.reading import COLUMNS, parse_practices

__all__ = [
    "ASSUMED_SINCE",
    "LegacyReceiver",
    "announce",
    "convert",
    "legacy_practices",
    "legacy_register",
    "migrate_once",
    "read_receivers",
    "row_of",
]

log = get_logger("practices")

#: The start the converted rows give every period and agreement (the old config had none).
ASSUMED_SINCE: Final = date(2000, 1, 1)
MIGRATED_SOURCE: Final = "old-config-practitioners-and-receivers.csv"
NOTE: Final = "converted from the old config: check the dates, municipality and agreements"

#: Old practitioner type -> (practice type, specialty) of the register.
_FROM_TYPE: Final[Mapping[str, tuple[str, str | None]]] = {
    "lege": ("fastlege", "allmennmedisin"),
    "tannlege": ("tannlege", None),
    "kjeveortoped": ("tannlege", "kjeveortopedi"),
    "tannpleier": ("tannpleier", None),
    "psykolog": ("psykologspesialist", None),
    "fysioterapeut": ("fysioterapeut", None),
    "kiropraktor": ("kiropraktor", None),
    "logoped": ("logoped", None),
    "audiopedagog": ("audiopedagog", None),
    "ortoptist": ("ortoptist", None),
    "lab": ("privat_laboratorium", "medisinsk_biokjemi"),
    "medisinsk_genetikk": ("privat_laboratorium", "medisinsk_genetikk"),
    "radiologi": ("privat_rontgeninstitutt", "radiologi"),
    "psykiatri": ("poliklinikk", "psykiatri"),
    "helsestasjon": ("helsestasjon", None),
    "pasientreiser": ("pasientreiser", None),
    "fritt_behandlingsvalg": ("fritt_behandlingsvalg", None),
    "rehabilitering": ("rehabiliteringsinstitusjon", None),
    "behandlingsreiser": ("behandlingsreiser_utland", None),
}


@dataclass(frozen=True, slots=True)
class LegacyReceiver:
    """One ``[[receiver]]`` of the old receivers file."""

    her_id: str
    name: str
    enh_id: str | None = None
    account: str | None = None
    kid: str | None = None
    owner_her_id: str | None = None
    mail_address: str | None = None
    cpa_id: str | None = None


_RECEIVER_KEYS = frozenset(LegacyReceiver.__dataclass_fields__)


def read_receivers(path: Path) -> list[LegacyReceiver]:
    """The entries of an old receivers file (checked only as far as converting needs)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(f"receivers file not found: {path}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from exc
    entries = data.get("receiver", [])
    if not isinstance(entries, list):
        raise ConfigurationError(f"{path}: receiver must be an array of tables")
    return [_receiver(entry, f"{path}: receiver[{i}]") for i, entry in enumerate(entries)]


def _receiver(entry: Any, where: str) -> LegacyReceiver:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where} must be a table")
    unknown = sorted(set(entry) - _RECEIVER_KEYS)
    if unknown:
        raise ConfigurationError(f"{where}.{unknown[0]} is not a known key")
    values: dict[str, str] = {}
    for key, value in entry.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{where}.{key} must be a non-empty string")
        values[key] = value.strip()
    if "her_id" not in values or "name" not in values:
        raise ConfigurationError(f"{where} needs her_id and name")
    return LegacyReceiver(**values)


def legacy_practices(
    types: Mapping[str, str], receivers: Iterable[LegacyReceiver] = ()
) -> list[Practice]:
    """Register rows for the old config: one per HER id of either source, every period and
    agreement from ``ASSUMED_SINCE``, open."""
    by_her = {r.her_id: r for r in receivers}
    owners = {r.owner_her_id for r in by_her.values() if r.owner_her_id}
    since = Period(ASSUMED_SINCE)
    rows: list[Practice] = []
    for her in sorted(set(types) | set(by_her)):
        receiver = by_her.get(her)
        owner = receiver.owner_her_id if receiver else None
        if her in owners:
            kind, specialty = "helseforetak", None
        else:
            kind, specialty = _FROM_TYPE.get(types.get(her, ""), (UNRESOLVED, None))
            if owner is not None and kind == "privat_laboratorium":
                kind = "poliklinikk"  # owned by a health authority: a public laboratory
        practice_kind = PRACTICE_TYPES[kind]
        rows.append(
            Practice(
                her_id=her,
                name=receiver.name if receiver else f"HER {her}",
                practice_type=kind,
                valid=since,
                enh_id=receiver.enh_id if receiver else None,
                specialties=(specialty,) if specialty else (),
                direct_settlement=since if practice_kind.sends_claims else None,
                operating_agreement=since if kind == "fysioterapeut" else None,
                account=receiver.account if receiver else None,
                kid=receiver.kid if receiver else None,
                owner_her_id=owner if kind == "poliklinikk" else None,
                mail_address=receiver.mail_address if receiver else None,
                cpa_id=receiver.cpa_id if receiver else None,
            )
        )
    return rows


def legacy_register(
    types: Mapping[str, str], receivers: Iterable[LegacyReceiver] = ()
) -> PracticeRegister:
    """A register of the old config's senders, as ``convert`` would write it (tests, tools)."""
    return PracticeRegister.build("legacy", legacy_practices(types, receivers))


def convert(types: Mapping[str, str], receivers_file: Path | None) -> bytes:
    """A register CSV file (UTF-8) of the old config, ready for ``gateway practices import``."""
    receivers = read_receivers(receivers_file) if receivers_file is not None else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for p in legacy_practices(types, receivers):
        writer.writerow(row_of(p, note=NOTE))
    return out.getvalue().encode("utf-8")


def row_of(p: Practice, *, note: str = "") -> list[str]:
    """A practice as the values of ``COLUMNS`` (the CSV format ``reading`` reads)."""

    def day(value: date | None) -> str:
        return value.isoformat() if value else ""

    ds, oa = p.direct_settlement, p.operating_agreement
    return [
        p.her_id,
        p.enh_id or "",
        p.name,
        p.practice_type,
        "|".join(p.specialties),
        p.municipality or "",
        day(p.valid.start),
        day(p.valid.end),
        day(ds.start if ds else None),
        day(ds.end if ds else None),
        day(oa.start if oa else None),
        day(oa.end if oa else None),
        p.account or "",
        p.kid or "",
        p.owner_her_id or "",
        p.mail_address or "",
        p.cpa_id or "",
        note,
    ]


def announce(types: Mapping[str, str], receivers_file: Path | None, config: Path | str) -> str:
    """The text that tells an operator with the old config how to move it into the register;
    empty when neither is configured."""
    sources = []
    if types:
        sources.append(f"[practitioners] ({len(types)} senders)")
    if receivers_file is not None:
        sources.append(f"payout.receivers_file ({receivers_file})")
    if not sources:
        return ""
    return (
        f"{' and '.join(sources)} in {config} are no longer read: the practice register "
        "replaces them. Write them as a register file with `gateway practices convert "
        f"--config {config} --out practices.csv`, complete it (municipalities, agreements), "
        f"import it with `gateway practices import --config {config} practices.csv`, and "
        "remove them from the config."
    )


def _log(text: str) -> None:
    log.warning("legacy_practice_config", hint=text)


def migrate_once(
    imports: PracticeImports,
    types: Mapping[str, str],
    receivers_file: Path | None,
    config: Path | str,
    say: Callable[[str], None] = _log,
) -> int | None:
    """At start: with the old config present, ``say`` how to move it into the register (the
    daemon logs it, a command prints it); if no register has been imported yet, import the old
    config once as the first register (changing no decision). Returns the new import id."""
    text = announce(types, receivers_file, config)
    if not text:
        return None
    say(text)
    if imports.current() is not None:
        return None
    content = convert(types, receivers_file)
    practices = parse_practices(content, "converted old config")
    import_id = imports.record(MIGRATED_SOURCE, "csv", content, practices)
    say(
        f"imported it once as the first practice register (import {import_id}, "
        f"{len({p.her_id for p in practices})} practices); see `gateway practices show`"
    )
    return import_id
