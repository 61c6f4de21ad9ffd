"""SIGHUP reloads the partners' CPAs; a broken CPA file keeps the set in force."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.daemon import Daemon, _reload
from gateway.receipts.keys import generate_dev_credentials
from gateway.testing.cpa import CpaSpec, write_cpa


def config(tmp_path: Path) -> Config:
    keys = tmp_path / "keys"
    keys.mkdir()
    generate_dev_credentials(
        keys / "key.pem", keys / "cert.pem", common_name="HELFO test", organisation="HELFO"
    )
    partners = tmp_path / "partners"
    partners.mkdir()
    write_cpa(partners, CpaSpec(cpa_id="test:cpa:1"))
    data = {
        "identity": {"name": "HELFO test", "her_id": "79768"},
        "database": {"path": "gateway.sqlite3"},
        "spool": {"directory": "spool", "poll_interval": 0.05},
        "outbox": {"kind": "file", "directory": "outbox"},
        "signing": {"key_file": "keys/key.pem", "cert_file": "keys/cert.pem"},
        "partners": {"directory": "partners"},
    }
    return Config.from_mapping(data, tmp_path / "gateway.toml")


def test_reload_takes_a_new_cpa_and_keeps_the_old_set_when_one_is_broken(
    tmp_path: Path,
) -> None:
    daemon = Daemon(config(tmp_path))
    try:
        assert daemon.pipeline.partners is not None
        assert daemon.pipeline.partners.by_cpa_id("test:cpa:2") is None

        write_cpa(tmp_path / "partners", CpaSpec(cpa_id="test:cpa:2"))
        _reload(daemon)
        assert daemon.pipeline.partners.by_cpa_id("test:cpa:2") is not None

        (tmp_path / "partners" / "broken.xml").write_text("<not-a-cpa/>", encoding="utf-8")
        write_cpa(tmp_path / "partners", CpaSpec(cpa_id="test:cpa:3"))
        _reload(daemon)
        kept = daemon.pipeline.partners
        assert kept.by_cpa_id("test:cpa:2") is not None
        assert kept.by_cpa_id("test:cpa:3") is None  # nothing of a broken set is taken
    finally:
        daemon.close()


def test_a_broken_cpa_directory_stops_the_daemon_from_starting(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "partners" / "broken.xml").write_text("<not-a-cpa/>", encoding="utf-8")
    with pytest.raises(Exception, match=r"broken\.xml"):
        Daemon(cfg)


async def test_sighup_reaches_the_reload_in_a_running_daemon(tmp_path: Path) -> None:
    from gateway.daemon import run_daemon

    cfg = dataclasses.replace(config(tmp_path), drain_seconds=5.0)
    task = asyncio.create_task(run_daemon(cfg))
    loop = asyncio.get_running_loop()
    # Signal only once the daemon's handlers are installed (else SIGHUP ends pytest).
    for _ in range(500):
        if signal.SIGHUP in getattr(loop, "_signal_handlers", {}):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the daemon did not install its SIGHUP handler")
    write_cpa(tmp_path / "partners", CpaSpec(cpa_id="test:cpa:9"))
    reloaded = asyncio.Event()
    original = Daemon.reload_partners

    def spy(self: Daemon) -> None:
        original(self)
        partners = self.pipeline.partners
        if partners is not None and partners.by_cpa_id("test:cpa:9") is not None:
            reloaded.set()

    Daemon.reload_partners = spy  # type: ignore[method-assign]
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(reloaded.wait(), timeout=5)
    finally:
        Daemon.reload_partners = original  # type: ignore[method-assign]
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(task, timeout=10) == 0
