"""The wiring: which services a configuration runs, and every adapter's table checked at load."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters import OUTBOX_KINDS, Adapters, load_config
from gateway.cli import main
from gateway.config import Config
from gateway.daemon import run_daemon
from gateway.errors import ConfigurationError
from gateway.wiring import OUTBOXES, build


@pytest.fixture
def base(tmp_path: Path, credentials: tuple[Path, Path]) -> dict[str, Any]:
    key, cert = credentials
    return {
        "identity": {"name": "HELFO test", "her_id": "79768"},
        "database": {"path": "gateway.sqlite3"},
        "spool": {"directory": "spool", "poll_interval": 0.05, "settle_seconds": 0},
        "outbox": {"kind": "file", "directory": "outbox"},
        "signing": {"key_file": str(key), "cert_file": str(cert)},
    }


def config_of(tmp_path: Path, data: dict[str, Any]) -> Config:
    return Config.from_mapping(data, tmp_path / "gateway.toml")


def service_names(config: Config) -> list[str]:
    parts = build(config)
    try:
        return [service.name for service in parts.services]
    finally:
        parts.close()


def test_the_embedded_default_runs_the_file_outbox_and_the_spool(
    tmp_path: Path, base: dict[str, Any]
) -> None:
    assert (service_names(config_of(tmp_path, base))) == ["files", "spool", "watchdog"]


def test_smtp_mailboxes_metrics_and_payout_each_add_their_services(
    tmp_path: Path, base: dict[str, Any]
) -> None:
    (tmp_path / "imap.pw").write_text("secret\n", encoding="utf-8")
    base["outbox"] = {
        "kind": "smtp",
        "directory": "outbox",
        "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none", "from_address": "a@b"},
    }
    base["imap"] = {
        "mailboxes": [
            {
                "name": name,
                "host": "127.0.0.1",
                "security": "none",
                "user": name,
                "password_file": "imap.pw",
            }
            for name in ("claims", "other")
        ]
    }
    base["metrics"] = {"port": 9999}
    base["payout"] = {"enabled": True}
    assert (service_names(config_of(tmp_path, base))) == [
        "metrics",
        "smtp",
        "acks",
        "spool",
        "imap:claims",
        "imap:other",
        "payout",
        "watchdog",
    ]


@pytest.mark.parametrize(
    ("outbox", "message"),
    [
        ({"kind": "ftp"}, r"\.toml: outbox\.kind = 'ftp' is not supported \('file' or 'smtp'\)"),
        ({"kind": "smtp"}, r"outbox\.kind = 'smtp' needs an \[outbox\.smtp\] table"),
        (
            {"kind": "smtp", "smtp": {"host": "h"}},
            r"missing required key 'outbox\.smtp\.from_address'",
        ),
    ],
)
def test_the_outbox_kind_and_its_table_are_checked(
    tmp_path: Path, base: dict[str, Any], outbox: dict[str, Any], message: str
) -> None:
    base["outbox"] = {"directory": "outbox", **outbox}
    with pytest.raises(ConfigurationError, match=message):
        Adapters.of(config_of(tmp_path, base))


def test_every_outbox_kind_the_settings_accept_is_built() -> None:
    assert tuple(OUTBOXES) == OUTBOX_KINDS


def test_an_adapter_table_is_checked_before_any_command_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[identity]\nname = "x"\nher_id = "1"\n[database]\npath = "db.sqlite3"\n'
        '[spool]\ndirectory = "spool"\n[outbox]\ndirectory = "outbox"\n'
        '[signing]\nkey_file = "k.pem"\ncert_file = "c.pem"\n[payout]\nshedule = "daily"\n',
        encoding="utf-8",
    )
    Config.from_toml(path)  # the core alone is fine
    with pytest.raises(ConfigurationError, match=r"unknown key\(s\) payout\.shedule"):
        load_config(path)
    assert main(["status", "--config", str(path)]) == 78
    assert f"{path}: unknown key(s) payout.shedule" in capsys.readouterr().err
    assert not (tmp_path / "db.sqlite3").exists()  # nothing was started


async def test_a_service_that_fails_stops_the_daemon_with_its_own_error(
    tmp_path: Path, base: dict[str, Any]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        base["metrics"] = {"port": taken.getsockname()[1]}
        with pytest.raises(ConfigurationError, match="metrics: cannot listen"):
            await run_daemon(config_of(tmp_path, base), once=True)
