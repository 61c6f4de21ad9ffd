"""A gateway site in a temporary directory, wired to dovecot and an SMTP sink, and its daemon.

``tests/test_mail_e2e.py`` and ``bench/mail_bench.py`` both run the real daemon as its own
process (``python -m gateway run --config gateway.toml``) on such a site::

    with DovecotServer({user: password}) as dovecot, SmtpSink() as sink:
        site = MailSite(root, pki.gateway, dovecot, sink, settings, cpas=[spec, ...])
        site.start()
        site.wait_until_logged("imap_connected")
        ...
        assert site.stop() == 0

The site holds our key and certificate (``keys/gateway.*.pem``, signing and decryption), one CPA
per partner (``partners/``), the IMAP password file, the config (``gateway.toml``: one IMAP
mailbox on dovecot, the SMTP outbox on the sink, payout off, JSON logs at ``info``) and
``var/`` (database, spool, outbox, and ``daemon.log``: the daemon's stderr, never a pipe).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.testing.cpa import DEFAULT_PARTNER, DEFAULT_US, CpaSpec, write_cpa
from tests.support.dovecot import DovecotServer
from tests.support.pki import Credentials
from tests.support.smtp_sink import SmtpSink

#: A TOML value of the tuning tables: the config is written from these.
Value = str | int | float | bool


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """Who we are on the site and how its daemon is tuned (timeouts, polling, drain)."""

    name: str
    mail_address: str
    imap_user: str
    imap_password: str
    her_id: str = "79768"
    #: Extra keys of ``[spool]``, ``[outbox.smtp]``, ``[[imap.mailboxes]]`` and ``[daemon]``.
    spool: Mapping[str, Value] = field(default_factory=dict)
    smtp: Mapping[str, Value] = field(default_factory=dict)
    imap: Mapping[str, Value] = field(default_factory=dict)
    daemon: Mapping[str, Value] = field(default_factory=dict)
    #: ``[database]`` (default: the site's SQLite file), ``[payout]`` (default: off) and
    #: ``[practitioners]`` (default: none).
    database: Mapping[str, Value] = field(default_factory=lambda: {"path": "var/gateway.sqlite3"})
    payout: Mapping[str, Value] = field(default_factory=lambda: {"enabled": False})
    practitioners: Mapping[str, Value] = field(default_factory=dict)
    #: More IMAP users on the same dovecot (same password), each a mailbox of its own.
    more_mailboxes: tuple[str, ...] = ()


def partner_cpa(
    cpa_id: str,
    us: Credentials,
    partner: Credentials,
    *,
    our_mail: str,
    partner_mail: str,
    partner_her: str = DEFAULT_PARTNER.her_id,
    partner_name: str = DEFAULT_PARTNER.name,
) -> CpaSpec:
    """Our CPA with a partner: encrypted, gzipped requests; both sides' certificates."""
    return CpaSpec(
        cpa_id=cpa_id,
        us=dataclasses.replace(
            DEFAULT_US,
            mail_address=our_mail,
            signing_certificate=us.certificate,
            encryption_certificate=us.certificate,
        ),
        partner=dataclasses.replace(
            DEFAULT_PARTNER,
            her_id=partner_her,
            name=partner_name,
            mail_address=partner_mail,
            signing_certificate=partner.certificate,
            encryption_certificate=partner.certificate,
        ),
    )


def _toml(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    return repr(value)


def _table(header: str, keys: Mapping[str, Value]) -> str:
    return "\n".join([header, *(f"{key} = {_toml(value)}" for key, value in keys.items())])


def site_config(settings: SiteSettings, *, smtp_port: int, imap_port: int) -> str:
    """The site's ``gateway.toml``: paths relative to the site, servers on 127.0.0.1."""
    tables = [
        _table(
            "[identity]",
            {
                "name": settings.name,
                "her_id": settings.her_id,
                "enh_id": "889640782",
                "mail_address": settings.mail_address,
            },
        ),
        _table("[database]", dict(settings.database)),
        _table("[spool]", {"directory": "var/spool", "settle_seconds": 0, **settings.spool}),
        _table("[outbox]", {"kind": "smtp", "directory": "var/outbox"}),
        _table(
            "[outbox.smtp]",
            {
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "from_address": settings.mail_address,
                **settings.smtp,
            },
        ),
        _table(
            "[signing]",
            {"key_file": "keys/gateway.key.pem", "cert_file": "keys/gateway.cert.pem"},
        ),
        _table("[partners]", {"directory": "partners"}),
        _table(
            "[security]",
            {
                "decryption_key_file": "keys/gateway.key.pem",
                "decryption_cert_file": "keys/gateway.cert.pem",
            },
        ),
        *(
            _table(
                "[[imap.mailboxes]]",
                {
                    "name": name,
                    "host": "127.0.0.1",
                    "port": imap_port,
                    "security": "none",
                    "user": user,
                    "password_file": "imap-password",
                    **settings.imap,
                },
            )
            for name, user in [
                ("kuhr", settings.imap_user),
                *((user, user) for user in settings.more_mailboxes),
            ]
        ),
        _table("[payout]", dict(settings.payout)),
        *([_table("[practitioners]", settings.practitioners)] if settings.practitioners else []),
        _table("[logging]", {"level": "info", "format": "json"}),
        _table("[daemon]", dict(settings.daemon)),
    ]
    return "\n\n".join(tables) + "\n"


class MailSite:
    """The daemon's directory, config, keys and CPAs, with dovecot and the sink beside it."""

    def __init__(
        self,
        root: Path,
        us: Credentials,
        dovecot: DovecotServer,
        sink: SmtpSink,
        settings: SiteSettings,
        *,
        cpas: Iterable[CpaSpec],
    ) -> None:
        self.root = root
        self.dovecot = dovecot
        self.sink = sink
        self.settings = settings
        self.daemon: subprocess.Popen[bytes] | None = None
        self.log_path = root / "var" / "daemon.log"
        self.database = root / "var" / "gateway.sqlite3"
        self.log_path.parent.mkdir(parents=True)
        us.write(root / "keys", "gateway")
        (root / "imap-password").write_text(settings.imap_password + "\n", encoding="utf-8")
        partners = root / "partners"
        partners.mkdir()
        for spec in cpas:
            write_cpa(partners, spec)
        (root / "gateway.toml").write_text(
            site_config(settings, smtp_port=sink.port, imap_port=dovecot.port), encoding="utf-8"
        )

    # --- the daemon process ---

    def start(self) -> None:
        """Start ``gateway run``; its log (stderr) goes to var/daemon.log, never to a pipe."""
        assert self.daemon is None or self.daemon.poll() is not None
        with self.log_path.open("ab") as log:
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", "gateway.toml"],
                cwd=self.root,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    @property
    def running(self) -> subprocess.Popen[bytes]:
        """The daemon process (started)."""
        assert self.daemon is not None, "the daemon was not started"
        return self.daemon

    def kill(self) -> None:
        """SIGKILL: no drain, no clean-up, whatever was in hand."""
        self.running.send_signal(signal.SIGKILL)
        self.running.wait(timeout=30)
        assert self.running.returncode == -signal.SIGKILL

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM (if it still runs) and wait: the exit code. Past ``timeout`` it is killed and
        ``TimeoutExpired`` raised."""
        daemon = self.running
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        try:
            return daemon.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
            raise

    def close(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()

    # --- its log ---

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def log_events(self, event: str) -> int:
        """How many log lines have this event name."""
        needle = f'"event": "{event}"'
        return self.log_path.read_text(encoding="utf-8", errors="replace").count(needle)

    def wait_until_logged(self, event: str, timeout: float = 60.0) -> float:
        """Block until the daemon logs ``event``; the seconds waited. ``RuntimeError`` (with the
        log's tail) when the daemon exits or ``timeout`` passes first."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.running.poll() is not None:
                raise RuntimeError(
                    f"the daemon exited with {self.running.returncode}:\n{self.log_tail(30)}"
                )
            if self.log_events(event):
                return time.perf_counter() - started
            time.sleep(0.02)
        raise RuntimeError(
            f"the daemon did not log {event} within {timeout} s:\n{self.log_tail(30)}"
        )
