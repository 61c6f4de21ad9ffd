"""The checks behind ``gateway health``: can this gateway do its work right now?

Each check takes primitive parameters (paths, host, port, credentials), never raises, and
returns a ``Check``: ``ok``, ``warn`` (works, but a person should act soon: a certificate close
to expiry) or ``fail``. ``run_checks`` runs them concurrently, prints one line per check (or
JSON) and returns the exit code: 0 when nothing failed (warnings included), 1 otherwise.

Run it as the service user (``sudo -u gateway gateway health ...``) so permission problems show.
Details never contain a password.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import sqlite3
import ssl
import sys
import tempfile
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aioimaplib
import aiosmtplib
from cryptography import x509

from gateway.errors import StorageError
from gateway.inbox.imap.config import MailboxConfig
from gateway.inbox.imap.session import LoginRefused, Session
from gateway.outbox.smtp.session import smtp_client
from gateway.security.revocation import RevocationConfig, revocation_health
from gateway.store.database import Database

#: How a mailbox or SMTP connection is protected: implicit TLS, STARTTLS, or plain (tests only).
SECURITY = ("tls", "starttls", "none")
#: Tables the daemon cannot work without.
REQUIRED_TABLES = ("schema_version", "received", "messages", "replies")
DEFAULT_TIMEOUT = 10.0


class Status(enum.Enum):
    """How a check came out."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    """The result of one check. ``ok`` is False only for a failure; a warning is ok."""

    name: str
    status: Status
    detail: str

    @property
    def ok(self) -> bool:
        """False only when the check failed."""
        return self.status is not Status.FAIL

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "status": self.status.value, "ok": self.ok,
                "detail": self.detail}


def _ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def _fail(name: str, detail: str) -> Check:
    return Check(name, Status.FAIL, detail)


def _describe(exc: BaseException) -> str:
    """A short, password-free description of a library exception."""
    if isinstance(exc, TimeoutError | aiosmtplib.SMTPTimeoutError | aioimaplib.CommandTimeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --- database ---------------------------------------------------------------------------------


async def check_database(
    path: str | os.PathLike[str] | Database,
    *,
    expected_version: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - also SQLite's busy timeout
) -> Check:
    """Open the database read-only (a SQLite file, or a configured ``Database``, PostgreSQL
    included) and check that its schema is present.

    With ``expected_version`` (``gateway.store.migrations.SCHEMA_VERSION``): a newer schema
    fails (this gateway cannot use it), an older one warns (it is migrated on start).
    """
    name = "database"
    if isinstance(path, Database) and path.url is not None:
        return await _check_postgres(path.url, expected_version, timeout)
    db_path = path.path if isinstance(path, Database) else Path(path)
    assert db_path is not None  # a Database without a URL has a path
    try:
        async with asyncio.timeout(timeout):
            version, tables, received = await asyncio.to_thread(_read_database, db_path, timeout)
    except (sqlite3.Error, OSError, TimeoutError) as exc:
        return _fail(name, f"{db_path}: {_describe(exc)}")
    return _database_check(str(db_path), version, tables, received, expected_version)


async def _check_postgres(
    url: str,
    expected_version: int | None,
    timeout: float,  # noqa: ASYNC109 - also the server's statement timeout
) -> Check:
    from gateway.store.postgres import describe, probe  # psycopg only where it is used

    try:
        async with asyncio.timeout(timeout + 1):
            version, tables, received = await asyncio.to_thread(probe, url, timeout)
    except (StorageError, TimeoutError) as exc:
        return _fail("database", str(exc) or "timed out")
    return _database_check(describe(url), version, tables, received, expected_version)


def _database_check(
    db_path: str,
    version: int | None,
    tables: set[str],
    received: int,
    expected_version: int | None,
) -> Check:
    name = "database"
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        return _fail(name, f"{db_path}: not a gateway database (no table {', '.join(missing)})")
    if version is None:
        return _fail(name, f"{db_path}: no schema version recorded")
    summary = f"{db_path}: schema version {version}, {received} messages received"
    if expected_version is not None and version > expected_version:
        return _fail(name, f"{summary}; newer than this gateway's {expected_version}")
    if expected_version is not None and version < expected_version:
        return Check(name, Status.WARN, f"{summary}; migrated to {expected_version} on start")
    return _ok(name, summary)


def _read_database(path: Path, timeout: float) -> tuple[int | None, set[str], int]:
    if not path.is_file():
        # mode=ro never creates a file, but say plainly what is wrong.
        raise FileNotFoundError(0, "does not exist")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=timeout)
    try:
        tables = {
            str(row[0])
            for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        version: int | None = None
        received = 0
        if "schema_version" in tables:
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = None if row is None or row[0] is None else int(row[0])
        if "received" in tables:
            # MAX(id) rather than COUNT(*): an index lookup, not a scan of a large table.
            row = db.execute("SELECT COALESCE(MAX(id), 0) FROM received").fetchone()
            received = int(row[0])
        return version, tables, received
    finally:
        db.close()


# --- mail servers -----------------------------------------------------------------------------


async def check_imap_login(
    host: str,
    port: int,
    security: str,
    user: str,
    password: str,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - also aioimaplib's command timeout
    *,
    cafile: str | None = None,
) -> Check:
    """Connect to the IMAP server, log in as ``user`` and log out (the intake's own session).

    ``security`` is ``tls`` (implicit TLS, usually port 993), ``starttls`` (port 143, upgraded
    before login) or ``none``. ``cafile`` trusts a private CA besides the system store.
    """
    name = f"imap {user}@{host}:{port}"
    if security not in SECURITY:
        return _fail(name, f"unknown security {security!r} (one of {', '.join(SECURITY)})")
    mailbox = MailboxConfig(
        name=user,
        host=host,
        port=port,
        security=security,  # type: ignore[arg-type]  # checked against SECURITY above
        user=user,
        password_file=None,
        password_env=None,
        connect_timeout=timeout,
        command_timeout=timeout,
        ca_file=Path(cafile) if cafile else None,
    )
    session = Session(mailbox, password=password)
    try:
        async with asyncio.timeout(timeout):
            await session.open()
    except LoginRefused as exc:
        return _fail(name, f"login refused: {exc.reply}")
    except Exception as exc:
        return _fail(name, f"{session.step} failed: {_describe(exc.__cause__ or exc)}")
    finally:
        await session.close(graceful=True)
    return _ok(name, f"logged in ({security})")


async def check_smtp(
    host: str,
    port: int,
    security: str,
    user: str | None = None,
    password: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - also aiosmtplib's command timeout
    *,
    cafile: str | None = None,
) -> Check:
    """Connect to the SMTP server, say EHLO, log in if ``user`` is given, and QUIT.

    ``security`` as for ``check_imap_login`` (``tls`` usually port 465, ``starttls`` 587).
    Nothing is sent.
    """
    name = f"smtp {host}:{port}"
    if security not in SECURITY:
        return _fail(name, f"unknown security {security!r} (one of {', '.join(SECURITY)})")
    smtp = smtp_client(host, port, security, timeout=timeout, cafile=cafile)
    step = "connect"
    try:
        async with asyncio.timeout(timeout):
            await smtp.connect()
            step = "EHLO"
            await smtp.ehlo()
            if user:
                step = "login"
                await smtp.login(user, password or "")
            step = "QUIT"
            await smtp.quit()
    except Exception as exc:
        return _fail(name, f"{step} failed: {_describe(exc)}")
    finally:
        # Also when a timeout cancelled connect() half-way (connected, no greeting yet):
        # ``is_connected`` is still False then, but the transport is open.
        smtp.close()
    how = f"{security}, logged in as {user}" if user else security
    return _ok(name, f"EHLO answered ({how})")


# --- certificates and directories -------------------------------------------------------------


def days_to_expiry(path: str | os.PathLike[str], at: datetime | None = None) -> float:
    """Days from ``at`` (default now) until the first certificate in the PEM file expires.

    Negative once expired. Raises ``OSError``/``ValueError`` for a missing or unreadable file.
    Meant for the ``gateway_certificate_expiry_days`` gauge (read at each scrape, so a renewed
    certificate shows without a restart).
    """
    certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    when = at or datetime.now(UTC)
    earliest = min(c.not_valid_after_utc for c in certs)
    return (earliest - when).total_seconds() / 86400


async def check_certificate(
    path: str | os.PathLike[str],
    warn_days: float = 30,
    at: datetime | None = None,
) -> Check:
    """A PEM certificate file: fails when unreadable, not yet valid or expired; warns when
    any certificate in it expires within ``warn_days``."""
    cert_path = Path(path)
    name = f"certificate {cert_path.name}"
    when = at or datetime.now(UTC)
    try:
        pem = await asyncio.to_thread(cert_path.read_bytes)
        certs = x509.load_pem_x509_certificates(pem)
    except (OSError, ValueError) as exc:
        return _fail(name, f"{cert_path}: {_describe(exc)}")
    soonest = min(certs, key=lambda c: c.not_valid_after_utc)
    subject = soonest.subject.rfc4514_string() or "(no subject)"
    expires = soonest.not_valid_after_utc
    days = (expires - when).total_seconds() / 86400
    expiry = f"{subject} expires {expires:%Y-%m-%d %H:%M} UTC"
    early = [c for c in certs if c.not_valid_before_utc > when]
    if early:
        starts = min(c.not_valid_before_utc for c in early)
        return _fail(name, f"{cert_path}: not valid before {starts:%Y-%m-%d %H:%M} UTC")
    if days < 0:
        return _fail(name, f"{cert_path}: EXPIRED: {expiry} ({-days:.0f} days ago)")
    if days < warn_days:
        return Check(name, Status.WARN, f"{cert_path}: {expiry}, in {days:.0f} days: renew it")
    return _ok(name, f"{cert_path}: {expiry}, in {days:.0f} days")


async def check_directory_writable(path: str | os.PathLike[str]) -> Check:
    """The directory exists and a file can be created, synced and removed in it."""
    directory = Path(path)
    name = f"directory {directory}"
    try:
        await asyncio.to_thread(_probe_directory, directory)
    except OSError as exc:
        return _fail(name, f"not writable: {_describe(exc)}")
    return _ok(name, "writable")


def _probe_directory(directory: Path) -> None:
    if not directory.is_dir():
        raise NotADirectoryError(0, "does not exist or is not a directory")
    fd, probe = tempfile.mkstemp(prefix=".health-", suffix=".tmp", dir=directory)
    try:
        os.write(fd, b"gateway health\n")
        os.fsync(fd)
    finally:
        os.close(fd)
        Path(probe).unlink()


# --- who may send, and whether we can tell -------------------------------------------------------


async def check_authentication(partners_directory: str | os.PathLike[str] | None) -> Check:
    """Whether claims are authenticated at all: only with partners (CPAs) is a sender checked
    and a signature verified; without, every claim is taken as it comes (a warning)."""
    name = "authentication"
    if partners_directory is None:
        return Check(
            name,
            Status.WARN,
            "claims are NOT authenticated: no partners.directory, so no sender is checked and "
            "no signature verified (see README, Configuration)",
        )
    return _ok(name, f"claims must come from a CPA partner in {partners_directory}")


async def check_revocation(
    config: RevocationConfig | None,
    certificates: Sequence[x509.Certificate] = (),
    at: datetime | None = None,
) -> Check:
    """The CRL cache (``gateway.security.revocation.revocation_health``): fails for a stale or
    missing CRL a partner certificate needs; without ``[revocation]``, says it is not checked."""
    name = "revocation"
    if config is None:
        return _ok(name, "not checked (no [revocation]): partner certificates are only pinned")
    when = at or datetime.now(UTC)
    state = await asyncio.to_thread(revocation_health, config, when, certificates)
    status = {"ok": Status.OK, "warn": Status.WARN}.get(state.status, Status.FAIL)
    return Check(name, status, f"{state.detail} (cache {config.cache_dir})")


async def check_payout_held(where: str | os.PathLike[str] | Database) -> Check:
    """Payout decisions held back because their receiver's CPA does not list their
    Service/Action (``gateway.payout.routing``): a warning naming each receiver and why. The
    database (a SQLite file or a configured ``Database``) is read read-only."""
    name = "payout decisions"
    try:
        held = await asyncio.to_thread(_read_held, where)
    except StorageError as exc:  # PostgreSQL: it names the database
        return _fail(name, str(exc))
    except (sqlite3.Error, OSError) as exc:
        return _fail(name, f"{where}: {_describe(exc)}")
    if not held:
        return _ok(name, "none held")
    shown = "; ".join(f"{vedtak} to HER {her}: {reason}" for vedtak, her, reason in held[:3])
    more = f" (and {len(held) - 3} more)" if len(held) > 3 else ""
    return Check(
        name,
        Status.WARN,
        f"{len(held)} held, not sent: {shown}{more}; see 'gateway payout show'",
    )


_HELD = (
    "SELECT h.vedtak_id, d.receiver_her, h.reason FROM payout_held h "
    "JOIN payout_decisions d ON d.vedtak_id = h.vedtak_id ORDER BY h.held_at"
)


def _read_held(where: str | os.PathLike[str] | Database) -> list[tuple[str, str, str]]:
    if isinstance(where, Database) and where.url is not None:
        from gateway.store.postgres import look  # psycopg only where it is used

        found = look(where.url, DEFAULT_TIMEOUT, _HELD, needs=("payout_held", "payout_decisions"))
        return [(str(r[0]), str(r[1]), str(r[2])) for r in found]
    path = where.path if isinstance(where, Database) else Path(where)
    assert path is not None  # a Database without a URL has a path
    if not path.is_file():
        return []
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=DEFAULT_TIMEOUT)
    try:
        tables = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master")}
        if "payout_held" not in tables:
            return []
        return [(str(r[0]), str(r[1]), str(r[2])) for r in db.execute(_HELD)]
    finally:
        db.close()


# --- running and reporting --------------------------------------------------------------------


async def gather_checks(checks: Iterable[Awaitable[Check]]) -> list[Check]:
    """Run the checks concurrently; a check that raises (a bug) is reported as a failure."""
    pending = list(checks)
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    results: list[Check] = []
    for position, outcome in enumerate(outcomes, start=1):
        if isinstance(outcome, Check):
            results.append(outcome)
        elif isinstance(outcome, Exception):
            results.append(_fail(f"check {position}", f"crashed: {_describe(outcome)}"))
        else:
            raise outcome  # KeyboardInterrupt, cancellation: not a check result
    return results


def exit_code(results: Sequence[Check]) -> int:
    """0 when nothing failed (warnings included), 1 otherwise."""
    return 0 if all(r.ok for r in results) else 1


def report(results: Sequence[Check], *, as_json: bool = False, out: TextIO | None = None) -> int:
    """Print one line per check (or one JSON document) and return the exit code."""
    stream = out if out is not None else sys.stdout
    code = exit_code(results)
    if as_json:
        json.dump({"ok": code == 0, "checks": [r.as_dict() for r in results]}, stream, indent=2)
        stream.write("\n")
        return code
    width = max((len(r.name) for r in results), default=0)
    for r in results:
        stream.write(f"{r.status.value.upper():<4}  {r.name:<{width}}  {r.detail}\n")
    return code


async def run_checks(
    checks: Iterable[Awaitable[Check]], *, as_json: bool = False, out: TextIO | None = None
) -> int:
    """Run the checks, print the results, return the exit code (for ``gateway health``)."""
    return report(await gather_checks(checks), as_json=as_json, out=out)


__all__ = [
    "REQUIRED_TABLES",
    "SECURITY",
    "Check",
    "Status",
    "check_authentication",
    "check_certificate",
    "check_database",
    "check_directory_writable",
    "check_imap_login",
    "check_payout_held",
    "check_revocation",
    "check_smtp",
    "days_to_expiry",
    "exit_code",
    "gather_checks",
    "report",
    "run_checks",
]
