"""Reading typed dates and times, and showing moments: one time zone, Norway's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gateway.clock import OSLO, bound, parse_moment, shown


def test_a_typed_date_or_time_is_norwegian_time_unless_it_has_an_offset() -> None:
    assert parse_moment("2026-03-29") == date(2026, 3, 29)
    assert parse_moment(" 2026-03-29T01:30 ") == datetime(2026, 3, 29, 1, 30)
    assert bound(parse_moment("2026-03-29"), aware=True) == datetime(2026, 3, 29, tzinfo=OSLO)
    # The whole day as the end of a range; across the spring change it is 23 hours long.
    end = bound(date(2026, 3, 29), aware=True, end=True)
    start = bound(date(2026, 3, 29), aware=True)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)
    # Compared with a claim's DatoTid: naive Norwegian time, an offset converted.
    assert bound(parse_moment("2026-07-01T08:00+00:00"), aware=False) == datetime(
        2026, 7, 1, 10, 0
    )
    assert bound(parse_moment("2026-07-01T08:00"), aware=False) == datetime(2026, 7, 1, 8, 0)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_moment("1.7.2026")


def test_a_moment_is_shown_in_norwegian_time_with_its_offset() -> None:
    assert shown(datetime(2026, 11, 23, 12, 0, tzinfo=UTC)) == "2026-11-23T13:00:00+01:00"
    assert shown(datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))) == (
        "2026-07-01T19:00:00+02:00"
    )
    assert shown(datetime(2026, 7, 1, 9, 15), timespec="minutes", sep=" ") == "2026-07-01 09:15"
    assert shown(None) == "-"
