"""``[web] in_daemon = true``: ``gateway run`` serves the console too, from its start until it
stops, on the daemon's database; a port in use stops the daemon as a configuration error."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import Config
from gateway.daemon import Daemon
from gateway.errors import ConfigurationError
from gateway.store import Store
from gateway.users.accounts import Accounts
from gateway.users.passwords import use_low_cost_for_tests
from gateway.users.roles import Role
from tests.support.net import free_port
from tests.support.web import PASSWORD, csrf_of

pytestmark = pytest.mark.integration


def config_of(tmp_path: Path, credentials: tuple[Path, Path], web: dict[str, Any]) -> Config:
    key, cert = credentials
    data = {
        "identity": {"name": "HELFO test", "her_id": "79768"},
        "database": {"path": "gateway.sqlite3"},
        "spool": {"directory": "spool", "poll_interval": 0.05, "settle_seconds": 0},
        "outbox": {"kind": "file", "directory": "outbox"},
        "signing": {"key_file": str(key), "cert_file": str(cert)},
        "web": web,
    }
    return Config.from_mapping(data, tmp_path / "gateway.toml")


def service_names(config: Config) -> list[str]:
    daemon = Daemon(config)
    try:
        return [service.name for service in daemon.parts.services]
    finally:
        daemon.close()


def test_the_console_is_a_service_of_the_daemon_only_when_asked(
    tmp_path: Path, credentials: tuple[Path, Path]
) -> None:
    assert "web" not in service_names(config_of(tmp_path, credentials, {}))
    names = service_names(config_of(tmp_path, credentials, {"in_daemon": True}))
    assert names[-2:] == ["web", "watchdog"]


async def wait_for_page(url: str, seconds: float = 30) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(int(seconds * 10)):
            try:
                return await http.get(url)
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


async def test_the_console_starts_and_stops_with_the_daemon(
    tmp_path: Path, credentials: tuple[Path, Path]
) -> None:
    port = free_port()
    config = config_of(
        tmp_path, credentials, {"in_daemon": True, "port": port, "cookie_secure": False}
    )
    use_low_cost_for_tests()
    users = Store(config.database)
    try:
        Accounts(users.users).add("dag", PASSWORD, [Role.DRIFT], by="test")
    finally:
        users.close()
    daemon = Daemon(config)
    base = f"http://127.0.0.1:{port}"
    try:
        running = asyncio.create_task(daemon.run())
        login = await wait_for_page(base + "/logg-inn")
        assert login.status_code == 200 and "Logg inn" in login.text
        # A claim the daemon takes in is on the page of the console it serves.
        (config.spool.incoming / "a.msg").write_bytes(b"not a claim at all\r\n")
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            page = await http.get("/logg-inn")
            form = {"csrf": csrf_of(page.text), "brukernavn": "dag", "passord": PASSWORD}
            assert (await http.post("/logg-inn", data=form)).status_code == 303
            for _ in range(200):
                listing = await http.get("/drift/meldinger", params={"fra": "2000-01-01T00:00"})
                if "1 meldinger (høyst 500" in listing.text:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the daemon's message is not on the console")
        daemon.stopping.set()
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        daemon.close()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nobody listens any more


async def test_a_console_port_in_use_stops_the_daemon_as_a_configuration_error(
    tmp_path: Path, credentials: tuple[Path, Path]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = config_of(tmp_path, credentials, {"in_daemon": True, "port": port})
        daemon = Daemon(config)
        try:
            with pytest.raises(ConfigurationError, match=r"web\.in_daemon: cannot serve"):
                await asyncio.wait_for(daemon.run(), 30)
        finally:
            daemon.close()
