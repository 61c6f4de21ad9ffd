"""Scheduled deliveries: configuration, the three kinds of extract, the log, repeatability, key
rotation and the scheduler claiming each fire once."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gateway.deliveries.config import DeliveriesConfig, Extract
from gateway.deliveries.extracts import due_period, make_extract
from gateway.deliveries.log import deliver, log_entries
from gateway.deliveries.schedule import DeliveryScheduler
from gateway.errors import ConfigurationError
from gateway.settings import Table
from tests.test_stats_core import db_path

__all__ = ["db_path"]


def _config(tmp_path: Path, **extract: object) -> DeliveriesConfig:
    (tmp_path / "k1.key").write_text("first secret key material", encoding="utf-8")
    (tmp_path / "k2.key").write_text("second secret key material", encoding="utf-8")
    data = {
        "enabled": True,
        "directory": "out",
        "keys": [{"id": "2023", "file": "k1.key"}, {"id": "2024", "file": "k2.key"}],
        "extract": [
            {
                "name": "fhi",
                "kind": "surveillance",
                "cron": "0 6 * * *",
                "legal_basis": "MSIS-forskriften",
                "recipient": "FHI",
                "diagnoses": ["A"],
            },
            {
                "name": "forskning",
                "kind": "research",
                "cron": "0 8 1 * *",
                "legal_basis": "REK 2023/1",
                "recipient": "UiO",
                "approval": "REK 2023/1",
                "fields": ["pasient", "dato", "aldersgruppe"],
                "key": "2023",
                "period": "month",
                **extract,
            },
        ],
    }
    return DeliveriesConfig.from_table(Table(data, base=tmp_path, where="deliveries"))


def test_every_delivery_names_its_legal_basis_and_research_its_approval(tmp_path: Path) -> None:
    base = {"name": "x", "kind": "surveillance", "cron": "0 6 * * *", "recipient": "FHI"}
    with pytest.raises(ConfigurationError, match="legal_basis"):
        DeliveriesConfig.from_table(
            Table({"extract": [{**base, "diagnoses": ["A"]}]}, base=tmp_path)
        )
    with pytest.raises(ConfigurationError, match="fields"):
        _config(tmp_path, fields=["pasient", "fodselsnummer"])
    with pytest.raises(ConfigurationError, match="key"):
        _config(tmp_path, key="1999")


def test_surveillance_counts_per_day_and_municipality_suppressed_below_5(
    db_path: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    made = make_extract(db_path, config.extract("fhi"), "2023-02-10")
    lines = made.content.decode().splitlines()
    assert "# hjemmel: MSIS-forskriften" in lines
    data = [line for line in lines if not line.startswith("#")]
    # 2023-02-10 in Oslo: lege P1-P5 and tannlege P1, P3-P5 (every bill has diagnosis A);
    # in Bergen P7 and P10 (P8 credited, P9 overridden to avvist): under 5
    assert data[0] == "dato;kommune;diagnose;antall"
    rows = {tuple(r.split(";")[:2]): r.split(";")[3] for r in data[1:]}
    assert rows[("2023-02-10", "0301")] == "9"
    assert rows[("2023-02-10", "4601")] == ":"
    assert made.rows == len(data) - 1


def test_research_holds_only_approved_fields_with_keyed_pseudonyms(
    db_path: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    first = deliver(db_path, config, config.extract("forskning"), "2023-02", by="kari")
    text = Path(first.file).read_text(encoding="utf-8")
    assert "P01" not in text and "0301" not in text  # no id, no field not approved
    header = next(line for line in text.splitlines() if not line.startswith("#"))
    assert header == "pasient;dato;aldersgruppe"
    expected = hmac.new(b"first secret key material", b"P01", hashlib.sha256).hexdigest()[:32]
    assert expected in text
    again = deliver(db_path, config, config.extract("forskning"), "2023-02", by="ola")
    assert again.sha256 == first.sha256  # repeatable exactly
    rotated = _config(tmp_path, key="2024")
    other = deliver(db_path, rotated, rotated.extract("forskning"), "2023-02", by="kari")
    assert expected not in Path(other.file).read_text(encoding="utf-8")
    log = log_entries(db_path, "forskning")
    assert [(e.requested_by, e.rows, e.legal_basis) for e in log][:2] == [
        ("kari", first.rows, "REK 2023/1"),
        ("ola", first.rows, "REK 2023/1"),
    ]


def test_the_scheduler_delivers_each_fire_once_for_the_period_before(
    db_path: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    moments = iter(
        [
            datetime(2023, 2, 11, 4, 0, tzinfo=UTC),  # first start (05:00 in Oslo): none due
            datetime(2023, 2, 11, 4, 0, tzinfo=UTC),
            datetime(2023, 2, 11, 6, 0, tzinfo=UTC),  # 07:00 in Oslo: fhi (06:00) is due
            datetime(2023, 2, 11, 6, 0, tzinfo=UTC),
        ]
        + [datetime(2023, 2, 11, 6, 1, tzinfo=UTC)] * 4
    )
    scheduler = DeliveryScheduler(config, db_path, clock=lambda: next(moments))
    assert scheduler.run_due() == []
    [entry] = scheduler.run_due()
    assert (entry.delivery, entry.period, entry.requested_by) == ("fhi", "2023-02-10", "scheduler")
    assert scheduler.run_due() == []  # claimed once


def test_due_periods() -> None:
    def extract(period: str) -> Extract:
        return Extract("x", "statistics", "0 6 * * *", "b", "r", period)

    assert due_period(extract("day"), date(2023, 3, 1)) == "2023-02-28"
    assert due_period(extract("month"), date(2023, 1, 1)) == "2022-12"
    assert due_period(extract("tertial"), date(2023, 5, 1)) == "2023-T1"
    assert due_period(extract("tertial"), date(2023, 2, 1)) == "2022-T3"
    assert due_period(extract("year"), date(2023, 2, 1)) == "2022"
