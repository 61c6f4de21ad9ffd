"""The SMTP outbox: delivers due ``replies`` rows over reused aiosmtplib connections.

Rows are committed first (in the transaction of the decision that made them); this sender only
reads due rows, sends them, and records what happened:

- **sent** (250): delivered; one more send counted (``store.outbox.record_delivery``, one commit per
  pass of up to ``BATCH`` rows, so a crash re-sends at most one pass: at-least-once, and ebXML
  receivers drop a repeated MessageId);
- **transient** (4xx, connection refused or dropped, timeouts): the row is tried again at
  ``next_attempt_at`` (exponential backoff with jitter); when the *server* is unreachable the whole
  sender pauses, with its own backoff, instead of burning through every row;
- **permanent** (5xx, an unresolvable recipient, ``max_attempts`` used up): the row becomes a dead
  letter with the reason in ``last_error``, for ``gateway outbox dead / requeue / discard``.

Connections (1–4) are opened on demand, reused for every message, reopened when dropped, and
closed (QUIT) after ``idle_close`` seconds without work and on shutdown. ``notify()`` wakes the
sender at once when the daemon commits new rows; otherwise it polls every ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiosmtplib
import structlog

from gateway.clock import utc_now
from gateway.errors import ConfigurationError, StorageError, TransportError
from gateway.logs import get_logger
from gateway.records import PendingReply
from gateway.store import Store

log = get_logger("outbox.smtp")

Security = Literal["tls", "starttls", "none"]
_SECURITY: Mapping[str, int] = {"tls": 465, "starttls": 587, "none": 25}
#: Rows fetched per pass, per connection.
BATCH = 50

#: Resolves a row's recipient (a mail address, or 'HER:<id>') to a mail address; None when it
#: cannot be (given by the daemon: the partner registry).
Resolver = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """``[outbox.smtp]``: where and how to send. The password is never in the config: it is
    read from ``password_file`` or the environment variable ``password_env`` when connecting."""

    host: str
    from_address: str  # the SMTP envelope sender (MAIL FROM)
    port: int = 587
    security: Security = "starttls"
    user: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    ca_file: Path | None = None  # extra trust anchors (a private CA); default: the system's
    timeout: float = 30.0
    connections: int = 1
    backoff_base: float = 5.0  # seconds before the first retry; doubled per failure
    backoff_max: float = 600.0
    max_attempts: int = 50  # transient failures before a row is given up (0: never)
    poll_interval: float = 5.0
    idle_close: float = 60.0

    _KEYS = frozenset(
        {
            "host", "port", "security", "user", "password_file", "password_env", "ca_file",
            "from_address", "timeout", "connections", "backoff_base", "backoff_max",
            "max_attempts", "poll_interval", "idle_close",
        }
    )

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], base: Path, *, prefix: str = "outbox.smtp"
    ) -> SmtpConfig:
        """Read the ``[outbox.smtp]`` table; relative paths are against ``base`` (the config's
        directory). Raises ``ConfigurationError`` naming the key."""

        def key(name: str) -> str:
            return f"{prefix}.{name}"

        def fail(name: str, expected: str) -> ConfigurationError:
            return ConfigurationError(f"{key(name)} must be {expected}, got {data.get(name)!r}")

        if "password" in data:
            raise ConfigurationError(
                f"{key('password')}: never put the password in the config; use "
                f"{key('password_file')} or {key('password_env')}"
            )
        unknown = sorted(set(data) - cls._KEYS)
        if unknown:
            raise ConfigurationError(f"unknown key {key(unknown[0])} (known: {sorted(cls._KEYS)})")

        def text(name: str, *, required: bool = False) -> str | None:
            value = data.get(name)
            if value is None:
                if required:
                    raise ConfigurationError(f"missing required key {key(name)!r}")
                return None
            if not isinstance(value, str) or not value.strip():
                raise fail(name, "a non-empty string")
            return value.strip()

        def number(name: str, default: float, low: float, high: float | None = None) -> float:
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail(name, "a number")
            if value < low or (high is not None and value > high):
                raise fail(name, f"between {low} and {high}" if high else f"at least {low}")
            return float(value)

        def path(name: str) -> Path | None:
            value = text(name)
            return None if value is None else (base / value).resolve()

        security = text("security") or "starttls"
        if security not in _SECURITY:
            raise fail("security", "'tls', 'starttls' or 'none'")
        host = text("host", required=True)
        sender = text("from_address", required=True)
        assert host is not None and sender is not None
        if "@" not in sender:
            raise fail("from_address", "a mail address")
        user = text("user")
        password_file = path("password_file")
        password_env = text("password_env")
        if password_file is not None and password_env is not None:
            raise ConfigurationError(
                f"{key('password_file')} and {key('password_env')}: give only one"
            )
        if user is not None and password_file is None and password_env is None:
            raise ConfigurationError(
                f"{key('user')} is set: give {key('password_file')} or {key('password_env')}"
            )
        if user is None and (password_file is not None or password_env is not None):
            raise ConfigurationError(f"a password source is given: {key('user')} is missing")
        if password_file is not None and not password_file.is_file():
            raise ConfigurationError(f"{key('password_file')}: no such file {password_file}")
        ca_file = path("ca_file")
        if ca_file is not None and not ca_file.is_file():
            raise ConfigurationError(f"{key('ca_file')}: no such file {ca_file}")
        config = cls(
            host=host,
            from_address=sender,
            port=int(number("port", _SECURITY[security], 1, 65535)),
            security=security,  # type: ignore[arg-type]  # checked against _SECURITY above
            user=user,
            password_file=password_file,
            password_env=password_env,
            ca_file=ca_file,
            timeout=number("timeout", 30.0, 0.1),
            connections=int(number("connections", 1, 1, 4)),
            backoff_base=number("backoff_base", 5.0, 0.001),
            backoff_max=number("backoff_max", 600.0, 0.001),
            max_attempts=int(number("max_attempts", 50, 0)),
            poll_interval=number("poll_interval", 5.0, 0.01),
            idle_close=number("idle_close", 60.0, 0.1),
        )
        if config.backoff_max < config.backoff_base:
            raise fail("backoff_max", f"at least backoff_base ({config.backoff_base})")
        if int(data.get("connections", 1)) != data.get("connections", 1):
            raise fail("connections", "a whole number from 1 to 4")
        return config

    def password(self) -> str | None:
        """The SMTP password, read now from its file or environment variable."""
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read SMTP password file {self.password_file}: {exc.strerror}"
                ) from exc
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if not value:
                raise ConfigurationError(
                    f"environment variable {self.password_env} (the SMTP password) is not set"
                )
            return value
        return None


class SmtpFailure(TransportError):
    """A delivery attempt failed. ``permanent``: the row is dead (5xx, a bad address);
    ``connection``: the server itself is unreachable or refused us (pause the sender)."""

    def __init__(
        self, text: str, *, code: int | None = None, permanent: bool, connection: bool
    ) -> None:
        super().__init__(text)
        self.code = code
        self.permanent = permanent
        self.connection = connection


#: Replies about the session or our credentials, not the message: 421 closing, 530 STARTTLS or
#: AUTH required, 534/538 a stronger mechanism or encryption required, 535 bad credentials.
#: Retried with the sender paused; dead-lettering every row for them would be wrong.
_SESSION_CODES = frozenset({421, 530, 534, 535, 538})


def translate(exc: BaseException) -> SmtpFailure:
    """An aiosmtplib/socket exception as an ``SmtpFailure`` (where the library is called)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0] if exc.recipients else None
        code = first.code if first is not None else 550
        text = f"SMTP {code} recipient refused: {first.message if first else exc}"
        return SmtpFailure(text, code=code, permanent=500 <= code < 600, connection=False)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPHeloError):
        # Our credentials or the server's greeting: wrong for every message, not this one.
        return SmtpFailure(
            f"SMTP {exc.code} {exc.message}", code=exc.code, permanent=False, connection=True
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        connection = (
            exc.code in _SESSION_CODES or isinstance(exc, aiosmtplib.SMTPConnectResponseError)
        )
        return SmtpFailure(
            f"SMTP {exc.code} {exc.message}",
            code=exc.code,
            permanent=500 <= exc.code < 600 and not connection,
            connection=connection,
        )
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address it cannot send safely
        return SmtpFailure(f"invalid address: {exc}", permanent=True, connection=False)
    if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
        return SmtpFailure(
            f"{type(exc).__name__}: {exc}", permanent=False, connection=True
        )
    raise TypeError(f"not an SMTP failure: {exc!r}")  # pragma: no cover


_TRANSLATED = (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError)


class _Connection:
    """One reused SMTP session."""

    def __init__(self, config: SmtpConfig, number: int) -> None:
        self.config = config
        self.number = number
        self.client: aiosmtplib.SMTP | None = None
        self.last_used = time.monotonic()
        self.opened = 0  # how many times a session was opened: shows reuse

    async def _open(self) -> aiosmtplib.SMTP:
        config = self.config
        context = None
        if config.security != "none":
            context = ssl.create_default_context(
                cafile=str(config.ca_file) if config.ca_file else None
            )
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            timeout=config.timeout,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            tls_context=context,
            username=config.user,
            password=config.password(),
        )
        await client.connect()
        self.opened += 1
        log.debug("smtp_connected", connection=self.number, host=config.host, port=config.port)
        return client

    async def send(self, recipient: str, body: bytes) -> None:
        """Send one message; raise ``SmtpFailure``."""
        reused = self.client is not None and self.client.is_connected
        try:
            if not reused:
                await self.close()
                self.client = await self._open()
            assert self.client is not None
            try:
                await self.client.sendmail(self.config.from_address, [recipient], body)
            except aiosmtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                # The server dropped an idle session under us: one fresh try.
                await self.close()
                self.client = await self._open()
                await self.client.sendmail(self.config.from_address, [recipient], body)
        except _TRANSLATED as exc:
            failure = translate(exc)
            if failure.connection:
                await self.close()
            raise failure from exc
        finally:
            self.last_used = time.monotonic()

    async def close(self) -> None:
        """QUIT politely; drop the session if that fails."""
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await asyncio.wait_for(client.quit(), timeout=min(self.config.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


@dataclass(slots=True)
class SenderStats:
    """Counters for logs and tests."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    pauses: int = 0
    passes: int = 0


class SmtpOutbox:
    """Delivers due rows of ``store`` to an SMTP server until ``run``'s stop event is set."""

    def __init__(
        self,
        store: Store,
        config: SmtpConfig,
        resolve: Resolver,
        *,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.config = config
        self.resolve = resolve
        self.clock = clock
        self.jitter = jitter
        self.stats = SenderStats()
        config.password()  # a missing password file or variable stops the start, not a send
        self._connections = [_Connection(config, n + 1) for n in range(config.connections)]
        self._wake = asyncio.Event()
        self._paused_until = 0.0  # monotonic
        self._down = 0  # consecutive connection-level failures

    def notify(self) -> None:
        """New rows were committed: deliver them now rather than at the next poll."""
        self._wake.set()

    @property
    def connections_opened(self) -> int:
        """SMTP sessions opened so far (reuse keeps this small)."""
        return sum(c.opened for c in self._connections)

    @property
    def paused(self) -> bool:
        """The server was unreachable; the sender waits before trying again."""
        return time.monotonic() < self._paused_until

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; a send in progress is finished, the rest stay
        pending. Connections are closed on the way out."""
        log.info(
            "smtp_outbox_started",
            host=self.config.host,
            port=self.config.port,
            security=self.config.security,
            connections=self.config.connections,
        )
        try:
            while not stop.is_set():
                try:
                    handled = await self.deliver_due(stop)
                except StorageError:
                    # The database, not the mail server: keep going, the rows are still there.
                    log.exception("smtp_outbox_storage_error")
                    handled = 0
                if stop.is_set():
                    break
                if handled and not self.paused:
                    continue
                await self._wait(stop)
        finally:
            await self.close()
            log.info(
                "smtp_outbox_stopped",
                delivered=self.stats.delivered,
                retried=self.stats.retried,
                dead=self.stats.dead,
            )

    async def close(self) -> None:
        """Close every connection."""
        for connection in self._connections:
            await connection.close()

    async def deliver_due(self, stop: asyncio.Event | None = None) -> int:
        """One pass: send the rows due now over the connections; return how many were tried."""
        self._wake.clear()
        if self.paused:
            return 0
        rows = await asyncio.to_thread(
            self.store.outbox.pending_replies, BATCH * len(self._connections), now=self.clock()
        )
        if not rows:
            return 0
        self.stats.passes += 1
        queue: list[PendingReply] = list(reversed(rows))
        delivered: list[int] = []
        tried = 0

        async def work(connection: _Connection) -> None:
            nonlocal tried
            while queue and not self.paused and not (stop is not None and stop.is_set()):
                row = queue.pop()
                tried += 1
                if await self._deliver_one(connection, row):
                    delivered.append(row.id)

        try:
            async with asyncio.TaskGroup() as group:
                # No more sessions than rows: one message needs one connection.
                for connection in self._connections[: min(len(rows), len(self._connections))]:
                    group.create_task(work(connection))
        finally:
            # Even when cancelled: what was sent is recorded, so it is not sent again.
            if delivered:
                record = self.store.outbox.record_delivery
                await asyncio.shield(asyncio.to_thread(record, delivered))
                self.stats.delivered += len(delivered)
        return tried

    async def _deliver_one(self, connection: _Connection, row: PendingReply) -> bool:
        with structlog.contextvars.bound_contextvars(reply_id=row.id, kind=row.kind):
            address = self.resolve(row.recipient)
            if address is None:
                reason = f"no mail address for recipient {row.recipient!r} (not in any CPA)"
                await self._dead(row, reason)
                return False
            try:
                await connection.send(address, _as_mail(row, self.config.from_address, address))
            except SmtpFailure as failure:
                await self._failed(row, failure)
                return False
            self._down = 0
            return True

    async def _dead(self, row: PendingReply, reason: str) -> None:
        log.error("reply_dead", error=reason, ebxml_message_id=row.ebxml_message_id)
        await asyncio.to_thread(self.store.outbox.mark_dead, row.id, reason)
        self.stats.dead += 1

    async def _failed(self, row: PendingReply, failure: SmtpFailure) -> None:
        if failure.permanent:
            await self._dead(row, str(failure))
            return
        attempts = row.attempts + 1
        if self.config.max_attempts and attempts >= self.config.max_attempts:
            await self._dead(row, f"gave up after {attempts} attempts; last: {failure}")
            return
        delay = self._backoff(attempts)
        retry_at = self.clock() + timedelta(seconds=delay)
        await asyncio.to_thread(self.store.outbox.record_failure, row.id, str(failure), retry_at)
        self.stats.retried += 1
        log.warning("reply_retry", error=str(failure), attempts=attempts, retry_in=round(delay, 3))
        if failure.connection:
            self._down += 1
            pause = self._backoff(self._down)
            self._paused_until = time.monotonic() + pause
            self.stats.pauses += 1
            log.warning("smtp_server_unreachable", error=str(failure), pause=round(pause, 3))

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with jitter: base·2^(n-1), at most ``backoff_max``, times a
        random factor in [0.5, 1) so senders that failed together do not retry together."""
        raw = min(self.config.backoff_max, self.config.backoff_base * 2.0 ** min(failures - 1, 30))
        return raw * (0.5 + 0.5 * self.jitter())

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until new rows are notified, a retry is due, the pause is over, or the poll."""
        if self.paused:
            # A notify must not cut the pause short: the server is down.
            timeout = self._paused_until - time.monotonic()
            waits = [stop.wait()]
        else:
            timeout = self.config.poll_interval
            due = await asyncio.to_thread(self.store.outbox.next_attempt_due)
            if due is not None:
                timeout = min(timeout, max(0.0, (due - self.clock()).total_seconds()))
            waits = [stop.wait(), self._wake.wait()]
            await self._close_idle()
        tasks = [asyncio.ensure_future(w) for w in waits]
        try:
            await asyncio.wait(
                tasks, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_idle(self) -> None:
        now = time.monotonic()
        for connection in self._connections:
            idle = now - connection.last_used
            if connection.client is not None and idle > self.config.idle_close:
                await connection.close()


def _as_mail(row: PendingReply, sender: str, recipient: str) -> bytes:
    """The row's bytes as a mail message. Replies to ebXML messages are whole MIME messages
    already; a bare XML AppRec (a MsgHead that came without ebXML) gets a minimal header."""
    if not row.body.lstrip().startswith(b"<"):
        return row.body
    headers = (
        f"From: {sender}\r\nTo: {recipient}\r\nSubject: {row.kind}\r\n"
        f"Date: {email.utils.format_datetime(utc_now())}\r\n"
        f"Message-ID: <{row.filename}.{row.id}@{sender.rsplit('@', 1)[-1]}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/xml; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return headers.encode("utf-8") + row.body
