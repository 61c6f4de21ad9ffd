"""The ``[payout]`` section of the config: schedule, payer account, receivers, output folders.

Every key is optional; without a ``[payout]`` table the scheduler is off and the commands use
the defaults below. It is read with ``gateway.settings.Table``: ``from_table`` raises
``ConfigurationError`` naming the bad key.

Keys (all under ``[payout]``):

``enabled`` (bool, false)
    Run the scheduler inside ``gateway run``.
``cron`` (str, ``"0 16 * * *"``)
    Five-field crontab expression (minute hour day month weekday), read by APScheduler.
``timezone`` (str, ``"Europe/Oslo"``)
    IANA time zone the cron expression is read in.
``payer_account`` (str, none)
    The payer's Norwegian account number (11 digits, MOD11); needed for the pain.001 file.
``payer_bic`` (str, none)
    BIC of the payer's bank, written as the debtor agent in pain.001 (optional).
``receivers_file`` (path, none)
    The old receivers file (TOML). No longer read for payouts: the practice register names the
    payees and gives their accounts (``gateway.practices``); when set, the start says how to
    convert it (``gateway.practices.legacy``).
``payments_directory`` (path, none = ``<outbox.directory>/payout``)
    Where ``<run key>.pain001.xml`` payment files are written.
``decisions_directory`` (path, none = ``<outbox.directory>/payout``)
    Where a copy of each signed decision is kept as ``<vedtak id>.xml``.
``cpa_id`` (str, ``"gateway-payout"``)
    The ebXML CPAId of decision messages for receivers without their own ``cpa_id``.
``claim_lease_seconds`` (number, 900)
    How long a scheduler's claim on a fire time keeps another instance from taking it over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from gateway.practices.accounts import valid_account
from gateway.settings import Table

DEFAULT_CRON = "0 16 * * *"
DEFAULT_TIMEZONE = "Europe/Oslo"
DEFAULT_CPA_ID = "gateway-payout"


@dataclass(frozen=True, slots=True)
class PayoutConfig:
    """Validated ``[payout]`` settings; paths are absolute."""

    enabled: bool = False
    cron: str = DEFAULT_CRON
    timezone: str = DEFAULT_TIMEZONE
    payer_account: str | None = None
    payer_bic: str | None = None
    receivers_file: Path | None = None
    payments_directory: Path | None = None
    decisions_directory: Path | None = None
    cpa_id: str = DEFAULT_CPA_ID
    claim_lease_seconds: float = 900.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: Path) -> PayoutConfig:
        """Read a ``[payout]`` table; relative paths are resolved against ``base``."""
        return cls.from_table(Table(data, base=base, where="payout"))

    @classmethod
    def from_table(cls, t: Table) -> PayoutConfig:
        """Read a ``[payout]`` table (empty: the defaults)."""
        t.only(_KEYS)
        timezone = t.string("timezone", DEFAULT_TIMEZONE)
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise t.fail("timezone", "an IANA time zone such as 'Europe/Oslo'") from exc
        cron = t.string("cron", DEFAULT_CRON)
        try:
            CronTrigger.from_crontab(cron, timezone=zone)
        except ValueError as exc:
            raise t.error(
                f"{t.key('cron')} must be a crontab expression, got {cron!r}: {exc}"
            ) from exc
        payer_account = t.opt_string("payer_account")
        if payer_account is not None and not valid_account(payer_account):
            raise t.fail("payer_account", "an 11-digit account number with a valid check digit")
        return cls(
            enabled=t.boolean("enabled", False),
            cron=cron,
            timezone=timezone,
            payer_account=payer_account,
            payer_bic=t.opt_string("payer_bic"),
            receivers_file=t.opt_path("receivers_file"),
            payments_directory=t.opt_path("payments_directory"),
            decisions_directory=t.opt_path("decisions_directory"),
            cpa_id=t.string("cpa_id", DEFAULT_CPA_ID),
            claim_lease_seconds=t.number("claim_lease_seconds", 900.0, positive=True),
        )

    def trigger(self) -> CronTrigger:
        """The APScheduler cron trigger of ``cron`` in ``timezone``."""
        return CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))


_KEYS = frozenset(f.name for f in dataclasses.fields(PayoutConfig))
