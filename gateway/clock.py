"""Time helpers: one place that knows the claims' local time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

#: Claims carry Norwegian local wall-clock times without an offset.
OSLO = ZoneInfo("Europe/Oslo")


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def local_naive(moment: datetime) -> datetime:
    """An aware moment as naive Norwegian local time, comparable with a claim's DatoTid."""
    return moment.astimezone(OSLO).replace(tzinfo=None)
