"""A full outbox disk is treated like a full database disk: retried, reported, recovered.

The disk is made to refuse by injecting ``ENOSPC`` into the file writes (as a full tmpfs does);
the replies wait in the database, ``notify`` never raises into the intake, ``health()`` says
what is wrong, and once the disk takes files again every reply is written by the service alone.
"""

from __future__ import annotations

import asyncio
import errno
import os
from functools import partial
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.config import Config
from gateway.outbox.files import FileOutbox, check_space
from gateway.records import ReplyRecord
from gateway.service import health_cli
from gateway.store import Store


def reply(n: int) -> ReplyRecord:
    return ReplyRecord(kind="apprec", recipient="HER:1", filename=f"r{n}.xml", body=b"%d" % n)


class FullDisk:
    """Makes every fsync fail with ENOSPC while ``full``, as a full disk does for the data a
    write had only buffered (the temp file is written, then refused)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = True
        real = os.fsync

        def fsync(fd: int) -> None:
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


def test_notify_on_a_full_disk_keeps_the_replies_pending_and_reports_it(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(monkeypatch)
    outbox = FileOutbox(store, tmp_path / "out")
    store.outbox.queue_replies([reply(1), reply(2)])
    with capture_logs() as logs:
        outbox.notify()  # from the intake's worker: must not raise
        outbox.notify()
    assert [e["event"] for e in logs] == ["outbox_delivery_failed"]  # once, not per try
    assert len(store.outbox.pending_replies()) == 2
    health = outbox.health()
    assert not health.ok and "No space left on device" in health.detail
    disk.full = False
    outbox.notify()
    assert outbox.health().ok
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r1.xml", "r2.xml"]
    assert store.outbox.pending_replies() == []


async def test_the_service_starts_on_a_full_disk_and_delivers_once_it_has_room(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(monkeypatch)
    store.outbox.queue_replies([reply(1)])  # left pending by a previous run
    outbox = FileOutbox(store, tmp_path / "out", first_retry=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))  # a full disk at start is no crash
    await asyncio.sleep(0.3)
    assert not task.done() and not outbox.health().ok
    disk.full = False
    with capture_logs() as logs:
        for _ in range(200):
            if outbox.health().ok:
                break
            await asyncio.sleep(0.02)
    assert outbox.health().ok
    assert "outbox_delivery_recovered" in [e["event"] for e in logs]
    assert (tmp_path / "out" / "r1.xml").read_bytes() == b"1"
    assert list((tmp_path / "out").glob(".*.tmp")) == []  # no leftovers filling the disk
    stop.set()
    await asyncio.wait_for(task, 5)


def test_check_space_fails_below_the_minimum(tmp_path: Path) -> None:
    assert check_space(tmp_path, min_free_bytes=1).ok
    low = check_space(tmp_path, min_free_bytes=2**62)
    assert not low.ok and "MiB free" in low.detail
    assert not check_space(tmp_path / "missing").ok


async def test_gateway_health_reports_the_outbox_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "outbox").mkdir()
    data = {
        "identity": {"name": "HELFO test", "her_id": "79768"},
        "database": {"path": "gateway.sqlite3"},
        "spool": {"directory": "spool"},
        "outbox": {"kind": "file", "directory": "outbox"},
        "signing": {"key_file": "k.pem", "cert_file": "c.pem"},
    }
    config = Config.from_mapping(data, tmp_path / "gateway.toml")

    async def space() -> list[tuple[str, bool, str]]:
        checks = await asyncio.gather(*health_cli.checks_for(config))
        return [(c.name, c.ok, c.detail) for c in checks if c.name == "outbox free space"]

    [(_, ok, detail)] = await space()
    assert ok and "MiB free" in detail
    monkeypatch.setattr(health_cli, "check_space", partial(check_space, min_free_bytes=2**62))
    [(_, ok, detail)] = await space()
    assert not ok and "replies wait in the database" in detail
