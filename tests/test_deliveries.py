"""Scheduled deliveries: configuration, the three kinds of extract, groups under 5 suppressed, no
national id in any file, the folder each is written to, the log, repeatability, key rotation, and
the scheduler: in the daemon, on its own loop, each fire delivered once (two daemons, catch-up)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Config
from gateway.daemon import Daemon
from gateway.deliveries.config import DeliveriesConfig, Extract
from gateway.deliveries.extracts import due_period, make_extract
from gateway.deliveries.log import deliver, log_entries
from gateway.deliveries.schedule import DeliveryScheduler
from gateway.errors import ConfigurationError, StorageError
from gateway.settings import Table
from gateway.stats.build import build_table
from gateway.store import Store
from gateway.store.engine import Engine
from tests.conftest import database_table
from tests.test_stats_core import db

__all__ = ["db"]


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
            {
                "name": "ssb",
                "kind": "statistics",
                "cron": "0 7 1 * *",
                "legal_basis": "statistikkloven § 10",
                "recipient": "SSB",
                "table": "kontakter",
                "period": "month",
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
    db: Engine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    made = make_extract(db, config.extract("fhi"), "2023-02-10")
    lines = made.content.decode().splitlines()
    assert "# hjemmel: MSIS-forskriften" in lines
    data = [line for line in lines if not line.startswith("#")]
    # 2023-02-10 in Oslo: lege P1-P5 and tannlege P1, P3-P5 (every bill has diagnosis A);
    # in Bergen lege P7-P10 (their credited and overridden extra bills out): 4 persons, under 5
    assert data[0] == "dato;kommune;diagnose;antall"
    rows = {tuple(r.split(";")[:2]): r.split(";")[3] for r in data[1:]}
    assert rows[("2023-02-10", "0301")] == "9"
    assert rows[("2023-02-10", "4601")] == ":"
    assert made.rows == len(data) - 1


def test_research_holds_only_approved_fields_with_keyed_pseudonyms(
    db: Engine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    first = deliver(db, config, config.extract("forskning"), "2023-02", by="kari")
    text = Path(first.file).read_text(encoding="utf-8")
    assert "P01" not in text and "0301" not in text  # no id, no field not approved
    header = next(line for line in text.splitlines() if not line.startswith("#"))
    assert header == "pasient;dato;aldersgruppe"
    expected = hmac.new(b"first secret key material", b"P01", hashlib.sha256).hexdigest()[:32]
    assert expected in text
    again = deliver(db, config, config.extract("forskning"), "2023-02", by="ola")
    assert again.sha256 == first.sha256  # repeatable exactly
    rotated = _config(tmp_path, key="2024")
    other = deliver(db, rotated, rotated.extract("forskning"), "2023-02", by="kari")
    assert expected not in Path(other.file).read_text(encoding="utf-8")
    log = log_entries(db, "forskning")
    assert [(e.requested_by, e.rows, e.legal_basis) for e in log][:2] == [
        ("kari", first.rows, "REK 2023/1"),
        ("ola", first.rows, "REK 2023/1"),
    ]


def test_the_scheduler_delivers_each_fire_once_for_the_period_before(
    db: Engine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    now = [datetime(2023, 2, 11, 4, 0, tzinfo=UTC)]  # first start (05:00 in Oslo)
    scheduler = DeliveryScheduler(config, db, clock=lambda: now[0])
    assert scheduler.run_due() == []  # none due
    now[0] = datetime(2023, 2, 11, 6, 0, tzinfo=UTC)  # 07:00 in Oslo: fhi (06:00) is due
    [entry] = scheduler.run_due()
    assert (entry.delivery, entry.period, entry.requested_by) == ("fhi", "2023-02-10", "scheduler")
    now[0] += timedelta(minutes=1)
    assert scheduler.run_due() == []  # claimed once


def test_due_periods() -> None:
    def extract(period: str) -> Extract:
        return Extract("x", "statistics", "0 6 * * *", "b", "r", period)

    assert due_period(extract("day"), date(2023, 3, 1)) == "2023-02-28"
    assert due_period(extract("month"), date(2023, 1, 1)) == "2022-12"
    assert due_period(extract("tertial"), date(2023, 5, 1)) == "2023-T1"
    assert due_period(extract("tertial"), date(2023, 2, 1)) == "2022-T3"
    assert due_period(extract("year"), date(2023, 2, 1)) == "2022"


def _data_lines(content: bytes) -> list[list[str]]:
    lines = content.decode("utf-8-sig").splitlines()
    return [line.split(";") for line in lines if line and not line.startswith("#")]


def test_surveillance_suppresses_a_group_of_under_5_persons_however_many_bills(
    db: Engine, tmp_path: Path
) -> None:
    with db.transaction("more bills") as tx:
        # Bergen on 2023-02-10 has P7-P10 (4 bills, 4 persons); P7 and P10 get three more each
        tx.execute(
            "INSERT INTO bills(message_id, position, sender_her, practitioner_id, guid, "
            "regning_nr, dato_tid, kreditering, betalt_egenandel, patient_id, patient_id_type, "
            "sum_refusjon_ore, status, approved_ore, patient_birth_date, patient_sex, "
            "practitioner_type) SELECT message_id, position + 100 * k.n, sender_her, "
            "practitioner_id, guid || '-' || k.n, regning_nr || '-' || k.n, dato_tid, 0, 0, "
            "patient_id, patient_id_type, sum_refusjon_ore, status, approved_ore, "
            "patient_birth_date, patient_sex, practitioner_type FROM bills, "
            "(SELECT 1 AS n UNION SELECT 2 UNION SELECT 3) AS k "
            "WHERE patient_id IN ('P07', 'P10') AND dato_tid = '2023-02-10T10:00:00' "
            "AND status = 'godkjent' AND practitioner_type = 'lege'"
        )
        tx.execute(
            "INSERT INTO bill_lines(bill_id, position, kind, code) SELECT id, 99, 'diagnose', "
            "'A' FROM bills WHERE guid LIKE '%-_'"
        )
        bergen = tx.one(
            "SELECT COUNT(*) FROM bills WHERE patient_id IN ('P07', 'P10') "
            "AND dato_tid = '2023-02-10T10:00:00' AND status = 'godkjent'"
        )
    assert bergen == (8,)  # of P7 and P10: Bergen has 10 bills of 4 persons
    made = make_extract(db, _config(tmp_path).extract("fhi"), "2023-02-10")
    rows = {(r[0], r[1]): r[3] for r in _data_lines(made.content)[1:]}
    assert rows[("2023-02-10", "4601")] == ":"
    assert rows[("2023-02-10", "0301")] == "9"  # P1-P5: five persons, published


def test_statistics_delivery_is_the_published_table_with_its_suppression(
    db: Engine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    entry = deliver(db, config, config.extract("ssb"), "2023-02", by="scheduler")
    content = Path(entry.file).read_bytes()
    assert b"# hjemmel: statistikkloven \xc2\xa7 10" in content
    table = build_table(
        db, measure="kontakter", by=("kommune", "aldersgruppe"), period="2023-02",
        share_of="aldersgruppe",
    )
    small = [c for c in table.cells if c.persons is not None and c.persons < 5]
    assert len(small) == 8 and all(c.value is None for c in small)  # 4601 (4), ukjent (2), ...
    header, *body = _data_lines(content)
    value = header.index("kontakter")
    shown = {tuple("*" if v == "I alt" else v for v in r[1:value]): r[value] for r in body if r[0]}
    assert shown == {c.key: ":" if c.value is None else str(c.value) for c in table.cells}
    assert shown[("0301", "30-49")] == "9"  # P1-P5: five persons
    assert entry.rows == len(table.cells)


def _with_national_ids(db: Engine) -> list[str]:
    """Give every patient an 11-digit national id (as the intake stores them)."""
    with db.transaction("national ids") as tx:
        patients = [r[0] for r in tx.rows("SELECT DISTINCT patient_id FROM bills ORDER BY 1")]
        ids = {p: f"{10190 + i:06d}{40000 + i:05d}" for i, p in enumerate(patients)}
        for old, new in ids.items():
            tx.execute("UPDATE bills SET patient_id = ? WHERE patient_id = ?", (new, old))
            tx.execute("UPDATE stats_residence SET patient_id = ? WHERE patient_id = ?", (new, old))
    return list(ids.values())


def test_no_delivery_holds_a_national_id(db: Engine, tmp_path: Path) -> None:
    ids = _with_national_ids(db)
    fields = ["pasient", "dato", "kommune", "aldersgruppe", "kjonn", "praksistype", "takster",
              "diagnoser", "refusjon"]
    config = _config(tmp_path, fields=fields)
    written = [
        deliver(db, config, config.extract("fhi"), "2023-02-10", by="kari"),
        deliver(db, config, config.extract("forskning"), "2023-02", by="kari"),
        deliver(db, config, config.extract("ssb"), "2023-02", by="kari"),
    ]
    for entry in written:
        text = Path(entry.file).read_text(encoding="utf-8-sig")
        assert entry.rows > 0
        assert not re.search(r"(?<!\d)\d{11}(?!\d)", text), entry.delivery
        assert not any(i in text for i in ids)
    research = Path(written[1].file).read_text(encoding="utf-8")
    pseudonyms = {r[0] for r in _data_lines(research.encode())[1:]}
    assert len(pseudonyms) == 11 and all(re.fullmatch("[0-9a-f]{32}", p) for p in pseudonyms)
    logged = db.rows("SELECT * FROM delivery_log")
    assert len(logged) == 3 and not any(i in repr(logged) for i in ids)


def test_a_delivery_is_written_whole_into_its_own_folder(db: Engine, tmp_path: Path) -> None:
    config = _config(tmp_path)
    entry = deliver(db, config, config.extract("fhi"), "2023-02-10", by="kari")
    folder = tmp_path / "out" / "fhi"
    assert Path(entry.file) == folder / "fhi-2023-02-10.csv"
    assert [p.name for p in folder.iterdir()] == ["fhi-2023-02-10.csv"]  # no temp file left
    assert hashlib.sha256(Path(entry.file).read_bytes()).hexdigest() == entry.sha256
    assert log_entries(db) == [entry]


def _scheduler_at(config: DeliveriesConfig, db: Engine, moment: datetime) -> DeliveryScheduler:
    return DeliveryScheduler(config, db, clock=lambda: moment)


def test_two_daemons_on_one_database_deliver_a_fire_once(
    db: Engine, store: Store, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    start = datetime(2023, 2, 11, 4, 0, tzinfo=UTC)
    assert _scheduler_at(config, db, start).run_due() == []  # the first start
    after = datetime(2023, 2, 11, 6, 0, tzinfo=UTC)
    assert store.database is not None
    daemons = [Store(store.database) for _ in range(4)]  # a connection (pool) each
    schedulers = [_scheduler_at(config, d.engine, after) for d in daemons]
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda s: s.run_due(), schedulers))
    finally:
        for d in daemons:
            d.close()
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert [(e.delivery, e.period) for e in log_entries(db)] == [("fhi", "2023-02-10")]


def test_fires_missed_while_stopped_are_caught_up_once_with_the_latest(
    db: Engine, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    assert _scheduler_at(config, db, datetime(2023, 2, 9, 4, 0, tzinfo=UTC)).run_due() == []
    # down from 2023-02-09 04:00 to 2023-02-12 06:00 UTC: fhi fired on 9, 10, 11 and 12 (05:00)
    back = _scheduler_at(config, db, datetime(2023, 2, 12, 6, 0, tzinfo=UTC))
    [entry] = back.run_due()
    assert (entry.delivery, entry.period) == ("fhi", "2023-02-11")
    assert back.run_due() == []


def test_a_failed_delivery_is_logged_and_the_others_go_on(db: Engine, tmp_path: Path) -> None:
    config = _config(tmp_path, cron="0 6 * * *")
    (tmp_path / "k1.key").unlink()  # the research key is gone
    assert _scheduler_at(config, db, datetime(2023, 2, 10, 4, 0, tzinfo=UTC)).run_due() == []
    scheduler = _scheduler_at(config, db, datetime(2023, 2, 11, 6, 0, tzinfo=UTC))
    assert [e.delivery for e in scheduler.run_due()] == ["fhi"]
    assert scheduler.run_due() == []  # at most once: the operator repeats the failed one by hand
    assert [e.delivery for e in log_entries(db)] == ["fhi"]


def _started(db: Engine) -> bool:
    """Whether a scheduler has started on ``db`` (its state row is there)."""
    try:
        return bool(db.rows("SELECT 1 FROM delivery_schedule_state"))
    except StorageError:  # not made yet
        return False


async def test_the_scheduler_delivers_on_its_own_loop(db: Engine, tmp_path: Path) -> None:
    config = _config(tmp_path)
    now = [datetime(2023, 2, 11, 4, 59, 59, 900000, tzinfo=UTC)]  # fhi fires at 05:00 UTC
    scheduler = DeliveryScheduler(config, db, clock=lambda: now[0], max_sleep=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        for _ in range(200):
            await asyncio.sleep(0.05)
            if _started(db):
                break
        now[0] += timedelta(seconds=1)
        for _ in range(400):
            await asyncio.sleep(0.05)
            if log_entries(db):
                break
        await asyncio.sleep(0.3)  # a few more ticks: nothing more is due
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [(e.delivery, e.period, e.requested_by) for e in log_entries(db)] == [
        ("fhi", "2023-02-10", "scheduler")
    ]
    assert (tmp_path / "out" / "fhi" / "fhi-2023-02-10.csv").is_file()


def test_gateway_run_schedules_deliveries_only_when_enabled(
    tmp_path: Path, credentials: tuple[Path, Path]
) -> None:
    key, cert = credentials

    def services(deliveries: dict[str, object]) -> list[str]:
        data = {
            "identity": {"name": "HELFO test", "her_id": "79768"},
            "database": {"path": "gateway.sqlite3"},
            "spool": {"directory": "spool"},
            "outbox": {"kind": "file", "directory": "outbox"},
            "signing": {"key_file": str(key), "cert_file": str(cert)},
            "deliveries": deliveries,
        }
        daemon = Daemon(Config.from_mapping(data, tmp_path / "gateway.toml"))
        try:
            return [service.name for service in daemon.parts.services]
        finally:
            daemon.close()

    assert "deliveries" not in services({})
    assert "deliveries" in services({"enabled": True, "directory": "deliveries"})
    with pytest.raises(ConfigurationError, match="directory"):
        services({"enabled": True})


def test_the_commands_list_run_and_log(
    db: Engine, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = Path(__file__).resolve().parents[1]
    text = (project / "config" / "local.toml").read_text(encoding="utf-8")
    text = text.replace('[database]\npath = "../var/gateway.sqlite3"', database_table(store))
    text = text.replace("../var/", "var/")
    text += (
        '\n[deliveries]\ndirectory = "out"\n\n[[deliveries.extract]]\nname = "fhi"\n'
        'kind = "surveillance"\ncron = "0 6 * * *"\nlegal_basis = "MSIS-forskriften"\n'
        'recipient = "FHI"\ndiagnoses = ["A"]\n'
    )
    config = tmp_path / "gateway.toml"
    config.write_text(text, encoding="utf-8")
    conf = ["--config", str(config)]
    assert main(["deliveries", "list", *conf]) == 0
    assert "fhi" in capsys.readouterr().out
    run = ["deliveries", "run", "fhi", "--period", "2023-02-10", "--by", "kari", *conf]
    assert main(run) == 0
    assert (tmp_path / "out" / "fhi" / "fhi-2023-02-10.csv").is_file()
    assert main(["deliveries", "run", "nei", "--by", "kari", *conf]) == 1
    capsys.readouterr()
    assert main(["deliveries", "log", *conf]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert "fhi" in line and "2023-02-10" in line and "by kari" in line
