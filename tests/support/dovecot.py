"""A real dovecot IMAP server for tests and benchmarks, in a temporary directory on 127.0.0.1.

Dovecot comes from Debian's ``dovecot-imapd`` package (``make deps`` installs it). The server
runs in the foreground, unprivileged (as ``nobody`` via ``setpriv`` when started by root, else as
the current user), with its config, passwords, maildirs, sockets and log all inside one
directory, so several can run side by side and nothing on the machine is touched::

    with DovecotServer({"claims": "secret"}) as server:
        server.append("claims", raw_mail)
        ...  # connect to 127.0.0.1:server.port
        server.restart()  # same port, same mail

``tls=True`` adds ``ssl = yes`` with a self-signed certificate for ``localhost``/127.0.0.1
(``cert_file``, for the client's trust store), an IMAPS listener on ``tls_port`` and STARTTLS
on ``port``.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.support.net import LocalServer, localhost_certificate
from tests.support.net import free_port as free_port  # re-exported: tests import it here

DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
MISSING_REASON = (
    "dovecot is not installed (install Debian's dovecot-imapd, e.g. `sudo make deps`, "
    "to run the IMAP integration tests)"
)
PROCESSED_FOLDER = "Processed"


class DovecotError(RuntimeError):
    """The test server could not be started or driven."""


def find_dovecot() -> Path | None:
    """The dovecot binary, or None where it is not installed."""
    found = shutil.which("dovecot")
    if found:
        return Path(found)
    for candidate in DOVECOT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login
mail_location = maildir:{dir}/mail/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={dir}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox {processed} {{
    auto = create
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
  # No growing delay after failed logins from 127.0.0.1 (tests log in wrongly on purpose).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{ssl}
{capability}
"""


class DovecotServer(LocalServer):
    """One dovecot instance with its own directory, port(s), users and maildirs."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        tls: bool = False,
        capability: str | None = None,
        directory: Path | None = None,
        binary: Path | None = None,
    ) -> None:
        found = binary or find_dovecot()
        if found is None:
            raise DovecotError(MISSING_REASON)
        self.binary = found
        self.users = dict(users)
        self.tls = tls
        #: Overrides what dovecot advertises after login (e.g. without MOVE or IDLE).
        self.capability = capability
        # Not under pytest's tmp_path: that is private to its owner (0700) and dovecot's
        # unprivileged processes must reach their files.
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="gateway-dovecot-"))
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.cert_file = self.directory / "cert.pem"
        self.key_file = self.directory / "key.pem"
        if os.geteuid() == 0:
            self._run_as = pwd.getpwnam("nobody")
        else:
            self._run_as = pwd.getpwuid(os.geteuid())
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    # --- lifecycle ---------------------------------------------------------------------------

    def _write_config(self) -> None:
        d = self.directory
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        ssl = "ssl = no"
        if self.tls:
            localhost_certificate(d, files=(self.cert_file.name, self.key_file.name))
            ssl = f"ssl = yes\nssl_cert = <{self.cert_file}\nssl_key = <{self.key_file}"
        group = _group_name(self._run_as.pw_gid)
        (d / "dovecot.conf").write_text(
            _CONFIG.format(
                dir=d,
                user=self._run_as.pw_name,
                group=group,
                port=self.port,
                tls_port=self.tls_port,
                processed=PROCESSED_FOLDER,
                ssl=ssl,
                capability=f"imap_capability = {self.capability}" if self.capability else "",
            ),
            encoding="utf-8",
        )
        self._write_passwords()
        d.chmod(0o755)
        if os.geteuid() == 0:
            for path in (d, *d.rglob("*")):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid, follow_symlinks=False)

    def _write_passwords(self) -> None:
        lines = "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in self.users.items())
        path = self.directory / "passwd"
        path.write_text(lines, encoding="utf-8")
        if os.geteuid() == 0:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def set_password(self, user: str, password: str) -> None:
        """Change (or add) a user's password; takes effect for the next login."""
        self.users[user] = password
        self._write_passwords()

    def start(self, timeout: float = 10.0) -> None:
        """Start dovecot in the foreground and wait until it greets on its port."""
        if self._process is not None:
            raise DovecotError("dovecot is already running")
        command = [str(self.binary), "-F", "-c", str(self.directory / "dovecot.conf")]
        if os.geteuid() == 0:
            command = [
                "setpriv",
                f"--reuid={self._run_as.pw_uid}",
                f"--regid={self._run_as.pw_gid}",
                "--clear-groups",
                *command,
            ]
        # Its own process group: the imap/log/stats children outlive the master otherwise.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                output = (
                    self._process.stdout.read().decode(errors="replace")
                    if (self._process.stdout)
                    else ""
                )
                self._process = None
                raise DovecotError(f"dovecot exited on start: {output}{self.log_text()}")
            if _greets(self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise DovecotError(f"dovecot did not accept connections within {timeout} s")

    def stop(self) -> None:
        """Stop dovecot (its data stays for a ``start`` on the same port)."""
        process, self._process = self._process, None
        if process is None:
            return
        # The whole group: post-login imap processes keep serving their clients after the
        # master is gone; a stop must drop every connection, as a real server restart does.
        _end_group(process.pid)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def restart(self) -> None:
        """Stop and start again on the same port, with the same users and mail."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        """Stop and remove the directory (if this object created it)."""
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def log_text(self) -> str:
        """dovecot's own log (for failure messages)."""
        with contextlib.suppress(FileNotFoundError):
            return (self.directory / "dovecot.log").read_text(encoding="utf-8", errors="replace")
        return ""

    # --- mail, through IMAP (Python's imaplib) -------------------------------------------------

    def _login(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(user, self.users[user])
        return client

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver ``raw`` into ``folder`` of ``user``'s mailbox."""
        self.append_many(user, [raw], folder)

    def append_many(self, user: str, mails: Iterable[bytes], folder: str = "INBOX") -> None:
        """Deliver several mails over one connection, in order."""
        client = self._login(user)
        try:
            for raw in mails:
                status, data = client.append(_quote(folder), None, None, raw)
                if status != "OK":
                    raise DovecotError(f"APPEND to {folder} failed: {data!r}")
        finally:
            client.logout()

    def create_folder(self, user: str, folder: str) -> None:
        """CREATE ``folder`` (a new one gets a new UIDVALIDITY)."""
        self._simple(user, "create", folder)

    def delete_folder(self, user: str, folder: str) -> None:
        """DELETE ``folder`` with its mails."""
        self._simple(user, "delete", folder)

    def _simple(self, user: str, command: str, folder: str) -> None:
        client = self._login(user)
        try:
            status, data = getattr(client, command)(_quote(folder))
            if status != "OK":
                raise DovecotError(f"{command.upper()} {folder} failed: {data!r}")
        finally:
            client.logout()

    def list_uids(self, user: str, folder: str = "INBOX") -> list[int]:
        """The UIDs in ``folder``, ascending (mails flagged \\Deleted included)."""
        client = self._login(user)
        try:
            client.select(_quote(folder), readonly=True)
            status, data = client.uid("SEARCH", "ALL")
            if status != "OK":
                raise DovecotError(f"UID SEARCH in {folder} failed: {data!r}")
            return sorted(int(n) for n in (data[0] or b"").split())
        finally:
            client.logout()

    def fetch_all(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The raw bytes of every mail in ``folder``, by ascending UID."""
        client = self._login(user)
        try:
            client.select(_quote(folder), readonly=True)
            status, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
            if status != "OK":
                raise DovecotError(f"UID FETCH in {folder} failed: {data!r}")
            return [bytes(item[1]) for item in data if isinstance(item, tuple)]
        finally:
            client.logout()

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """The folder's UIDVALIDITY."""
        client = self._login(user)
        try:
            status, data = client.status(_quote(folder), "(UIDVALIDITY)")
            match = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"") if status == "OK" else None
            if match is None:
                raise DovecotError(f"STATUS {folder} failed: {data!r}")
            return int(match.group(1))
        finally:
            client.logout()


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def _end_group(pgid: int) -> None:
    """SIGTERM the process group, wait up to 5 s, then SIGKILL."""
    for sig, seconds in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.01)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies, waiting to be reaped, do not)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command: state, ppid, pgrp.
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(64).startswith(b"* OK")
    except OSError:
        return False
