"""Time helpers: one place that knows the claims' local time zone.

Stored moments are UTC; a claim's DatoTid is Norwegian wall-clock time without an offset. What
a person types (``--since``, a form's date) is read with ``parse_moment`` and ``bound``: a naive
time is Norwegian time. What the commands print is ``shown``: Norwegian time with its offset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

#: Claims carry Norwegian local wall-clock times without an offset.
OSLO = ZoneInfo("Europe/Oslo")


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def local_naive(moment: datetime) -> datetime:
    """An aware moment as naive Norwegian local time, comparable with a claim's DatoTid."""
    return moment.astimezone(OSLO).replace(tzinfo=None)


def shown(moment: datetime | None, *, timespec: str = "seconds", sep: str = "T") -> str:
    """How output shows a moment: Norwegian time with its offset
    (``2026-10-05T10:30:00+02:00``); a naive one (a claim's DatoTid) as it is; ``-`` for none.
    """
    if moment is None:
        return "-"
    local = moment.astimezone(OSLO) if moment.tzinfo is not None else moment
    return local.isoformat(sep=sep, timespec=timespec)


def parse_moment(text: str) -> date | datetime:
    """A date (``YYYY-MM-DD``) or a date and time (``YYYY-MM-DDTHH:MM[:SS][+HH:MM]``) as typed;
    ``ValueError`` (saying what is expected) for anything else."""
    text = text.strip()
    try:
        if "T" in text or " " in text:
            return datetime.fromisoformat(text)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"not a date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM): {text!r}"
        ) from exc


def bound(value: date | datetime, *, aware: bool, end: bool = False) -> datetime:
    """A selection bound from a typed date or time. A naive time, and a date's midnight, are
    Norwegian time; a date as the ``end`` of a range includes that whole day. ``aware``: for
    comparing with stored UTC moments (received, sent); else naive Norwegian time, for
    comparing with a claim's DatoTid."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.combine(value + timedelta(days=1) if end else value, clock_time())
    if aware:
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=OSLO)
    return local_naive(moment) if moment.tzinfo is not None else moment
