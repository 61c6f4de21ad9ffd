"""``gateway web`` as a service: the systemd unit passes ``systemd-analyze``, the command starts
from its config on the configured port, and the console works under MemoryDenyWriteExecute's
rule (the kernel's PR_SET_MDWE), argon2 and TLS included."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port
from tests.support.web import PASSWORD

UNIT = Path(__file__).resolve().parents[1] / "config" / "gateway-web.service"


@pytest.fixture
def installable_unit(tmp_path: Path) -> Path:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    here = Path(sys.executable).parent / "gateway"
    text = UNIT.read_text("utf-8").replace("/opt/gateway/.venv/bin/gateway", str(here))
    unit = tmp_path / "gateway-web.service"
    unit.write_text(text, encoding="utf-8")
    return unit


def test_unit_verifies(installable_unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(installable_unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_unit_exposure_is_low(installable_unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(installable_unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if "offline" in result.stderr and result.returncode != 0:
        pytest.skip(f"this systemd-analyze has no --offline: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-500:]
    assert float(match.group(1)) <= 2.0, result.stdout


SITE = """
[identity]
name = "HELFO web"
her_id = "79768"
[database]
path = "var/gateway.sqlite3"
[spool]
directory = "var/spool"
[outbox]
directory = "var/outbox"
[signing]
key_file = "var/keys/key.pem"
cert_file = "var/keys/cert.pem"
[logging]
level = "warning"
[web]
port = {port}
tls_cert_file = "var/keys/cert.pem"
tls_key_file = "var/keys/key.pem"
"""

# Forbid W+X memory for the process (as systemd's MemoryDenyWriteExecute), then run gateway web.
RUN = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if sys.argv[1] == "kernel" and libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE
    sys.exit(99)
from gateway.cli import main
sys.exit(main(["web", "--config", "gateway.toml"]))
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    port = free_port()
    (tmp_path / "gateway.toml").write_text(SITE.format(port=port), encoding="utf-8")
    for argv, stdin in (
        (["keys", "generate", "--config", "gateway.toml"], ""),
        (["users", "add", "sara", "--role", "saksbehandler", "--password-stdin",
          "--config", "gateway.toml"], PASSWORD + "\n"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "gateway", *argv], cwd=tmp_path, input=stdin,
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr
    yield tmp_path, port


@pytest.mark.integration
def test_gateway_web_serves_tls_under_the_write_xor_execute_rule(
    site: tuple[Path, int],
) -> None:
    directory, port = site
    server = subprocess.Popen(
        [sys.executable, "-c", RUN, "kernel"], cwd=directory,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        verify = str(directory / "var" / "keys" / "cert.pem")
        base = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                if server.returncode == 99:
                    pytest.skip("this kernel has no PR_SET_MDWE")
                errors = server.stderr.read() if server.stderr else ""
                pytest.fail(f"gateway web exited {server.returncode}: {errors}")
            try:
                context = ssl.create_default_context(cafile=verify)
                context.check_hostname = False
                with httpx.Client(base_url=base, verify=context, timeout=10) as http:
                    page = http.get("/logg-inn")
                    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
                    assert token is not None
                    login = http.post("/logg-inn", data={
                        "csrf": token.group(1), "brukernavn": "sara", "passord": PASSWORD,
                    })
                    assert login.status_code == 303, login.text
                    assert http.get("/arbeidsliste").status_code == 200
                    assert http.get("/api/v1/openapi.json").status_code == 200
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout:
            server.stdout.close()
        if server.stderr:
            server.stderr.close()
