"""The ``[deliveries]`` section: where extracts go, the research keys, and each delivery.

::

    [deliveries]
    enabled = true
    directory = "../var/deliveries"           # one folder per delivery
    timezone = "Europe/Oslo"

    [[deliveries.keys]]                        # research pseudonym keys (rotation: add one)
    id = "2024"
    file = "secrets/research-2024.key"         # the secret, never in this file

    [[deliveries.extract]]
    name = "fhi-overvaking"
    kind = "surveillance"                      # surveillance | statistics | research
    cron = "0 6 * * *"                         # daily: the day before
    legal_basis = "MSIS-forskriften § 1-2"     # required for every delivery
    recipient = "Folkehelseinstituttet"
    diagnoses = ["R74", "R80"]

    [[deliveries.extract]]
    name = "ssb-kontakter"
    kind = "statistics"
    cron = "0 7 1 * *"                         # monthly: the month before
    legal_basis = "statistikkloven § 10"
    recipient = "Statistisk sentralbyrå"
    table = "kontakter"                        # a published table (gateway.stats.published)
    period = "month"                           # month | tertial | year: the last whole one

    [[deliveries.extract]]
    name = "studie-123"
    kind = "research"
    cron = "0 8 1 1 *"
    legal_basis = "REK 2023/123, helseregisterloven § 19"
    recipient = "Universitetet i Oslo"
    approval = "REK 2023/123"
    fields = ["pasient", "dato", "aldersgruppe", "kjonn", "diagnoser"]
    key = "2024"
    period = "year"

Read with ``gateway.settings.Table``; every error names the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from gateway.settings import Table

__all__ = ["KINDS", "RESEARCH_FIELDS", "DeliveriesConfig", "Extract", "ResearchKey"]

KINDS = ("surveillance", "statistics", "research")
PERIODS = ("day", "month", "tertial", "year")
#: What a research delivery may hold; its approval names the subset it gets.
RESEARCH_FIELDS = (
    "pasient",
    "dato",
    "kommune",
    "aldersgruppe",
    "kjonn",
    "praksistype",
    "takster",
    "diagnoser",
    "refusjon",
)


@dataclass(frozen=True, slots=True)
class ResearchKey:
    """A key for pseudonymous patient ids: its id (written with each extract) and file."""

    key_id: str
    file: Path

    def secret(self) -> bytes:
        data = self.file.read_bytes().strip()
        if len(data) < 16:
            raise ValueError(f"research key {self.key_id}: {self.file} holds under 16 bytes")
        return data


@dataclass(frozen=True, slots=True)
class Extract:
    """One configured delivery."""

    name: str
    kind: str
    cron: str
    legal_basis: str
    recipient: str
    period: str
    diagnoses: tuple[str, ...] = ()
    table: str | None = None
    fields: tuple[str, ...] = ()
    key: str | None = None
    approval: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveriesConfig:
    enabled: bool = False
    directory: Path | None = None
    timezone: str = "Europe/Oslo"
    keys: tuple[ResearchKey, ...] = ()
    extracts: tuple[Extract, ...] = ()

    def trigger(self, extract: Extract) -> CronTrigger:
        return CronTrigger.from_crontab(extract.cron, timezone=ZoneInfo(self.timezone))

    def extract(self, name: str) -> Extract:
        for item in self.extracts:
            if item.name == name:
                return item
        raise KeyError(name)

    def key(self, key_id: str) -> ResearchKey:
        for item in self.keys:
            if item.key_id == key_id:
                return item
        raise KeyError(key_id)

    @classmethod
    def from_table(cls, t: Table) -> DeliveriesConfig:
        t.only({"enabled", "directory", "timezone", "keys", "extract"})
        timezone = t.string("timezone", "Europe/Oslo")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise t.fail("timezone", "an IANA time zone such as 'Europe/Oslo'") from exc
        keys = tuple(_key(k) for k in t.tables("keys"))
        extracts = tuple(
            _extract(e, timezone, [k.key_id for k in keys]) for e in t.tables("extract")
        )
        names = [e.name for e in extracts]
        if len(set(names)) != len(names):
            raise t.error("deliveries.extract: two deliveries have the same name")
        enabled = t.boolean("enabled", False)
        directory = t.opt_path("directory")
        if enabled and directory is None:
            raise t.error("deliveries.enabled needs deliveries.directory")
        return cls(enabled, directory, timezone, keys, extracts)


def _key(t: Table) -> ResearchKey:
    t.only({"id", "file"})
    return ResearchKey(t.string("id"), t.path("file"))


def _extract(t: Table, timezone: str, key_ids: Sequence[str]) -> Extract:
    from gateway.stats.published import PUBLISHED

    t.only({f for f in Extract.__dataclass_fields__})
    kind = t.choice("kind", KINDS, "surveillance")
    cron = t.string("cron")
    try:
        CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))
    except ValueError as exc:
        raise t.error(f"{t.key('cron')} must be a crontab expression, got {cron!r}") from exc
    default_period = "day" if kind == "surveillance" else "month"
    extract = Extract(
        name=t.string("name"),
        kind=kind,
        cron=cron,
        legal_basis=t.string("legal_basis"),
        recipient=t.string("recipient"),
        period=t.choice("period", PERIODS, default_period),
        diagnoses=tuple(t.strings("diagnoses")),
        table=t.opt_string("table"),
        fields=tuple(t.strings("fields")),
        key=t.opt_string("key"),
        approval=t.opt_string("approval"),
    )
    if kind == "surveillance" and not extract.diagnoses:
        raise t.error(f"{t.key('diagnoses')}: a surveillance delivery names its diagnoses")
    if kind == "statistics" and extract.table not in PUBLISHED:
        raise t.fail("table", "one of " + ", ".join(sorted(PUBLISHED)))
    if kind == "research":
        unknown = [f for f in extract.fields if f not in RESEARCH_FIELDS]
        if not extract.fields or unknown:
            raise t.fail("fields", "a list of " + ", ".join(RESEARCH_FIELDS))
        if extract.approval is None:
            raise t.error(f"{t.key('approval')}: a research delivery names its approval")
        if extract.key not in key_ids:
            raise t.fail("key", "the id of a [[deliveries.keys]] entry")
    return extract
