"""Two daemons on one spool directory and one database: each dropped file answered once.

Spool claiming is a rename (atomic: two instances never claim one file). With ``spool.shared``
each instance has a work directory of its own; what an instance does on start with the files
left in ``work/`` must not take another live instance's file in hand: one daemon is restarted
(SIGKILL, start) while the other works.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.store import Store
from tests.test_daemon_e2e import CONFIG, drop_claims, gateway

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLAIMS = 150


def _site(root: Path, shared: Path) -> Path:
    root.mkdir()
    config = CONFIG.replace('path = "var/gateway.sqlite3"', f'path = "{shared}/gateway.sqlite3"')
    config = config.replace(
        'directory = "var/spool"', f'directory = "{shared}/spool"\nshared = true'
    )
    config = config.replace('directory = "var/outbox"', f'directory = "{shared}/outbox"')
    (root / "gateway.toml").write_text(config, encoding="utf-8")
    (root / "var").mkdir()
    return root


def _start(site: Path) -> subprocess.Popen[bytes]:
    with (site / "var" / "daemon.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", "gateway.toml"],
            cwd=site,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def test_two_daemons_sharing_a_spool_answer_each_file_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    a, b = _site(tmp_path / "a", shared), _site(tmp_path / "b", shared)
    keys = gateway("keys", "generate", "--config", "gateway.toml", cwd=a)
    assert keys.returncode == 0, keys.stderr
    (b / "var" / "keys").symlink_to(a / "var" / "keys")
    dropped = drop_claims(shared, CLAIMS)  # shared/var/spool/incoming
    (shared / "spool").mkdir()
    (shared / "var" / "spool" / "incoming").rename(shared / "spool" / "incoming")
    daemons = [_start(a), _start(b)]
    try:
        processed = shared / "spool" / "processed"
        for restart_at in (CLAIMS // 4, CLAIMS // 2):
            deadline = time.monotonic() + 120
            while not processed.is_dir() or len(list(processed.iterdir())) < restart_at:
                assert time.monotonic() < deadline, (a / "var" / "daemon.log").read_text()[-2000:]
                time.sleep(0.02)
            daemons[1].send_signal(signal.SIGKILL)  # b dies with files in hand ...
            daemons[1].wait(10)
            daemons[1] = _start(b)  # ... and recovers work/ while a is busy in it
        deadline = time.monotonic() + 180
        while len(list(processed.iterdir())) < CLAIMS:
            assert time.monotonic() < deadline, "not every file was processed"
            time.sleep(0.1)
        time.sleep(0.5)
        assert [d.poll() for d in daemons] == [None, None], "a daemon died on the shared spool"
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        codes = [daemon.wait(60) for daemon in daemons]
    assert codes == [0, 0]
    assert sorted(p.name.split("--", 1)[1] for p in processed.iterdir()) == sorted(dropped)
    assert list((shared / "spool" / "bad").iterdir()) == []
    store = Store(shared / "gateway.sqlite3")
    try:
        outcomes = {
            str(o): int(n)
            for o, n in store.engine.rows("SELECT outcome, COUNT(*) FROM received GROUP BY 1")
        }
        assert outcomes.get("failed", 0) == 0, outcomes
        per_claim = store.engine.rows(
            "SELECT ebxml_message_id, COUNT(*) FROM messages GROUP BY 1 HAVING COUNT(*) > 1"
        )
        assert per_claim == []
        assert store.engine.rows("SELECT COUNT(DISTINCT ebxml_message_id) FROM messages") == [
            (CLAIMS,)
        ]
        apprecs = store.engine.rows(
            "SELECT COUNT(*) FROM replies WHERE kind = 'apprec' AND state = 'delivered'"
        )
        assert apprecs == [(CLAIMS,)]
    finally:
        store.close()
