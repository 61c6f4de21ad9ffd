"""The ``[payout]`` section of the config: schedule, payer account, receivers, output folders.

Every key is optional; without a ``[payout]`` table the scheduler is off and the commands use
the defaults below. ``from_mapping`` raises ``ConfigurationError`` naming the bad key.

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
    The receivers registry (TOML, see ``gateway.payout.receivers``); without it every receiver
    lacks an account and every payment is held.
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

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from gateway.errors import ConfigurationError
from gateway.payout.receivers import valid_account

DEFAULT_CRON = "0 16 * * *"
DEFAULT_TIMEZONE = "Europe/Oslo"
DEFAULT_CPA_ID = "gateway-payout"

_KEYS = frozenset(
    {
        "enabled",
        "cron",
        "timezone",
        "payer_account",
        "payer_bic",
        "receivers_file",
        "payments_directory",
        "decisions_directory",
        "cpa_id",
        "claim_lease_seconds",
    }
)


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
    def from_mapping(cls, data: dict[str, Any], base: Path) -> PayoutConfig:
        """Read a ``[payout]`` table; relative paths are resolved against ``base``."""
        if not isinstance(data, dict):
            raise ConfigurationError("payout must be a table")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ConfigurationError(f"payout.{unknown[0]} is not a known key")
        enabled = data.get("enabled", False)
        if not isinstance(enabled, bool):
            raise _fail("enabled", "true or false", enabled)
        cron = _text(data, "cron", DEFAULT_CRON)
        timezone = _text(data, "timezone", DEFAULT_TIMEZONE)
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise _fail("timezone", "an IANA time zone such as 'Europe/Oslo'", timezone) from exc
        try:
            CronTrigger.from_crontab(cron, timezone=zone)
        except ValueError as exc:
            raise ConfigurationError(
                f"payout.cron must be a crontab expression, got {cron!r}: {exc}"
            ) from exc
        payer_account = _optional_text(data, "payer_account")
        if payer_account is not None and not valid_account(payer_account):
            raise _fail(
                "payer_account",
                "an 11-digit account number with a valid check digit",
                payer_account,
            )
        lease = data.get("claim_lease_seconds", 900.0)
        if isinstance(lease, bool) or not isinstance(lease, int | float) or lease <= 0:
            raise _fail("claim_lease_seconds", "a positive number", lease)
        return cls(
            enabled=enabled,
            cron=cron,
            timezone=timezone,
            payer_account=payer_account,
            payer_bic=_optional_text(data, "payer_bic"),
            receivers_file=_optional_path(data, "receivers_file", base),
            payments_directory=_optional_path(data, "payments_directory", base),
            decisions_directory=_optional_path(data, "decisions_directory", base),
            cpa_id=_text(data, "cpa_id", DEFAULT_CPA_ID),
            claim_lease_seconds=float(lease),
        )

    def trigger(self) -> CronTrigger:
        """The APScheduler cron trigger of ``cron`` in ``timezone``."""
        return CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))


def _fail(key: str, expected: str, value: object) -> ConfigurationError:
    return ConfigurationError(f"payout.{key} must be {expected}, got {value!r}")


def _text(data: dict[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, "a non-empty string", value)
    return value.strip()


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, "a non-empty string", value)
    return value.strip()


def _optional_path(data: dict[str, Any], key: str, base: Path) -> Path | None:
    value = _optional_text(data, key)
    return None if value is None else (base / value).resolve()
