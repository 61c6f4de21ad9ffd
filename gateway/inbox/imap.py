"""IMAP intake: poll configured mailboxes (aioimaplib) and hand each mail to the pipeline.

For every mailbox one ``MailboxPoller`` runs on its own: connect (TLS, STARTTLS or plain), log
in, select the intake folder, read its UIDVALIDITY, then in passes

1. ``UID SEARCH ALL``; in chunks of ``batch_size`` UIDs: ``UID FETCH (UID RFC822.SIZE)``, then
   ``UID FETCH (UID BODY.PEEK[])`` in sub-batches of at most ``MAX_BATCH_BYTES``;
2. per mail, the intake (the daemon: pipeline + commit), which returns only once the mail and
   everything it produced are committed, then a row in the mail tracker;
3. per batch, the committed mails leave the folder: ``UID MOVE`` to the processed folder (or
   COPY + STORE \\Deleted + EXPUNGE where MOVE is not offered), or STORE \\Deleted + EXPUNGE
   with ``after = "expunge"``.

A mail is thus removed only after it is committed. A crash in between leaves it in the folder:
it is fetched again, the tracker (or, failing that, the daemon's ``source_ref`` check) knows it,
and only the move is done. An intake that raises leaves the mail where it is, to be tried again
after ``poll_interval``. Between passes the poller IDLEs where the server offers it (woken by the
server on new mail, re-checking every ``idle_timeout``), else sleeps ``poll_interval``.

Any connection failure ends the session; the poller reconnects with exponential backoff (capped)
and never raises: one broken mailbox never stops the others or the daemon.

aioimaplib 2.0.3 raises ``RecursionError`` on a single reply of ~1,000 lines (upstream #118):
every command here touches at most ``MAX_BATCH`` messages, so no reply comes near that.
aioimaplib has no STARTTLS; ``_Session._starttls`` adds it with ``loop.start_tls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import ipaddress
import os
import random
import re
import ssl
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any, Literal, Protocol

import aioimaplib
import structlog

from gateway.errors import ConfigurationError, StorageError, TransportError
from gateway.inbox.mail_tracking import MailTracker
from gateway.logs import get_logger

log = get_logger("imap")

#: Most messages one command may touch (aioimaplib's reply-size bug, see the module docstring).
MAX_BATCH = 200
#: Most bytes fetched in one ``UID FETCH``; a bigger single mail is fetched alone.
MAX_BATCH_BYTES = 32 * 1024 * 1024

Security = Literal["tls", "starttls", "none"]
After = Literal["move", "expunge"]

_SECURITY: tuple[Security, ...] = ("tls", "starttls", "none")
_AFTER: tuple[After, ...] = ("move", "expunge")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Errors aioimaplib (or the socket/TLS layer under it) raises for a failed command/connection.
_IMAP_ERRORS = (aioimaplib.AioImapException, OSError, TimeoutError, EOFError)


class Intake(Protocol):
    """What the poller hands each mail to (the daemon's pipeline).

    Returns only once the message and all it produced are committed; idempotent per
    ``source_ref`` (a ref already committed is recognised and nothing is done). Raises (e.g.
    ``StorageError``) when not committed: the mail then stays in the folder and is retried.
    """

    async def __call__(
        self, raw: bytes, *, source: str, source_ref: str, source_name: str
    ) -> None: ...


# --- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    """One mailbox to take claims from. The password is never part of the config itself."""

    name: str
    host: str
    port: int
    security: Security
    user: str
    password_file: Path | None
    password_env: str | None
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    after: After = "move"
    poll_interval: float = 60.0
    idle: bool = True
    idle_timeout: float = 300.0
    batch_size: int = 100
    connect_timeout: float = 30.0
    command_timeout: float = 120.0
    ca_file: Path | None = None

    @property
    def source(self) -> str:
        """The intake ``source`` of mails from this mailbox."""
        return f"imap:{self.name}"

    def source_ref(self, uidvalidity: int, uid: int) -> str:
        """The intake ``source_ref`` of one mail."""
        return f"imap:{self.name}:{uidvalidity}:{uid}"

    def password(self) -> str:
        """Read the password from its file or environment variable (each time: rotatable)."""
        if self.password_file is not None:
            try:
                text = self.password_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(
                    f"imap mailbox {self.name!r}: cannot read password_file "
                    f"{self.password_file}: {exc.strerror or exc}"
                ) from exc
            secret = text.rstrip("\r\n")
            where = f"password_file {self.password_file}"
        else:
            secret = os.environ.get(self.password_env or "", "")
            where = f"environment variable {self.password_env}"
        if not secret:
            raise ConfigurationError(f"imap mailbox {self.name!r}: {where} is empty or unset")
        return secret

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], base: Path, *, where: str = "imap.mailboxes"
    ) -> MailboxConfig:
        """Validate one mailbox table; raise ``ConfigurationError`` naming the key.

        Relative paths (``password_file``, ``ca_file``) are resolved against ``base``.
        Exactly one of ``password_file`` and ``password_env`` must be given.
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{where} must be a table, got {data!r}")
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(
                f"{where}.name must be 1-64 letters, digits, '_', '.' or '-' "
                f"(it is part of every source_ref), got {name!r}"
            )
        r = _Keys(data, f"{where}[{name!r}]")
        if "password" in data:
            raise ConfigurationError(
                f"{r.prefix}.password: the password must not be in the config; put it in a file "
                "(password_file) or an environment variable (password_env)"
            )
        unknown = sorted(set(data) - _KNOWN_KEYS)
        if unknown:
            raise ConfigurationError(f"{r.prefix}: unknown key(s) {', '.join(unknown)}")
        security = r.choice("security", _SECURITY, "tls")
        port = r.integer("port", 993 if security == "tls" else 143, 1, 65535)
        password_file = r.opt_string("password_file")
        password_env = r.opt_string("password_env")
        if (password_file is None) == (password_env is None):
            raise ConfigurationError(
                f"{r.prefix}: give exactly one of password_file and password_env"
            )
        ca_file = r.opt_string("ca_file")
        config = cls(
            name=name,
            host=r.string("host"),
            port=port,
            security=security,
            user=r.string("user"),
            password_file=None if password_file is None else (base / password_file).resolve(),
            password_env=password_env,
            folder=r.folder("folder", "INBOX"),
            processed_folder=r.folder("processed_folder", "Processed"),
            after=r.choice("after", _AFTER, "move"),
            poll_interval=r.number("poll_interval", 60.0),
            idle=r.boolean("idle", True),
            idle_timeout=r.number("idle_timeout", 300.0),
            batch_size=r.integer("batch_size", 100, 1, MAX_BATCH),
            connect_timeout=r.number("connect_timeout", 30.0),
            command_timeout=r.number("command_timeout", 120.0),
            ca_file=None if ca_file is None else (base / ca_file).resolve(),
        )
        if config.after == "move" and config.processed_folder == config.folder:
            raise ConfigurationError(f"{r.prefix}.processed_folder must differ from folder")
        if config.ca_file is not None and not config.ca_file.is_file():
            raise ConfigurationError(f"{r.prefix}.ca_file: no such file {config.ca_file}")
        # Fail at load, not at the first connection, when the secret is missing.
        try:
            config.password()
        except ConfigurationError as exc:
            key = "password_file" if password_file is not None else "password_env"
            raise ConfigurationError(f"{r.prefix}.{key}: {exc}") from exc
        if security == "none" and not _is_loopback(config.host):
            log.warning(
                "imap_plaintext_to_remote_host",
                mailbox=name,
                host=config.host,
                hint="the password crosses the network unencrypted; use tls or starttls",
            )
        return config


_KNOWN_KEYS = frozenset(f.name for f in dataclasses.fields(MailboxConfig))


def load_mailboxes(
    value: object, base: Path, *, where: str = "imap.mailboxes"
) -> tuple[MailboxConfig, ...]:
    """Validate a TOML array of mailbox tables (``[[imap.mailboxes]]``); names must be unique."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigurationError(f"{where} must be an array of tables ([[{where}]])")
    configs = tuple(
        MailboxConfig.from_mapping(item, base, where=f"{where}[{i}]")
        for i, item in enumerate(value)
    )
    names = [c.name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(f"{where}: mailbox name(s) used twice: {', '.join(duplicates)}")
    return configs


class _Keys:
    """Typed access to one mailbox table, with errors that name the key."""

    def __init__(self, data: Mapping[str, Any], prefix: str) -> None:
        self.data = data
        self.prefix = prefix

    def _fail(self, key: str, expected: str) -> ConfigurationError:
        return ConfigurationError(
            f"{self.prefix}.{key} must be {expected}, got {self.data.get(key)!r}"
        )

    def string(self, key: str) -> str:
        if key not in self.data:
            raise ConfigurationError(f"{self.prefix}: missing required key {key!r}")
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "a non-empty string")
        return value

    def opt_string(self, key: str) -> str | None:
        return self.string(key) if key in self.data else None

    def folder(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        # Non-ASCII folder names need IMAP's modified UTF-7; not supported (yet).
        if (
            not isinstance(value, str)
            or not value
            or not value.isascii()
            or any(c in value for c in '\r\n"\\')
        ):
            raise self._fail(key, "an ASCII folder name without quotes or backslashes")
        return value

    def choice(self, key: str, allowed: tuple[Any, ...], default: Any) -> Any:
        value = self.data.get(key, default)
        if value not in allowed:
            raise self._fail(key, "one of " + ", ".join(repr(a) for a in allowed))
        return value

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._fail(key, "a positive number of seconds")
        return float(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._fail(key, f"an integer from {low} to {high}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- small pure helpers --------------------------------------------------------------------------


def uid_set(uids: Iterable[int]) -> str:
    """The compact IMAP sequence set of ``uids``: ``[1, 2, 3, 7]`` -> ``"1:3,7"``."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("empty UID set")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    parts.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(parts)


def message_id_of(raw: bytes) -> str | None:
    """The ``Message-ID`` header of a raw mail (whitespace folded), or None."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[: end + 2]
    value = BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID")
    if value is None:
        return None
    folded = " ".join(str(value).split())
    return folded[:998] or None


def _quote(folder: str) -> str:
    return '"' + folder + '"'  # folder names are validated: no quotes, backslashes or CR/LF


_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")


def _parse_search(lines: Sequence[Any]) -> list[int]:
    uids: list[int] = []
    for line in lines[:-1]:  # the last line is the tagged completion text
        tokens = bytes(line).split()
        if tokens and all(t.isdigit() for t in tokens):
            uids.extend(int(t) for t in tokens)
    return sorted(set(uids))


def _parse_sizes(lines: Sequence[Any]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for line in lines:
        if type(line) is bytes and _FETCH_START.match(line):
            uid, size = _UID.search(line), _SIZE.search(line)
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def _parse_bodies(lines: Sequence[Any]) -> dict[int, bytes]:
    """UID -> raw bytes from a ``UID FETCH (UID BODY.PEEK[])`` reply.

    aioimaplib gives ``b'3 FETCH (UID 7 BODY[] {1234}'``, the literal as a ``bytearray``, then
    ``b')'`` (a server may also put ``UID 7`` after the literal, in that closing line).
    """
    bodies: dict[int, bytes] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if (
            type(line) is bytes
            and _FETCH_START.match(line)
            and line.endswith(b"}")
            and i + 1 < len(lines)
            and isinstance(lines[i + 1], bytearray)
        ):
            match = _UID.search(line)
            if match is None and i + 2 < len(lines) and type(lines[i + 2]) is bytes:
                match = _UID.search(lines[i + 2])
            if match is not None:
                bodies[int(match.group(1))] = bytes(lines[i + 1])
            i += 2
            continue
        i += 1
    return bodies


def _batches_by_bytes(uids: Sequence[int], sizes: Mapping[int, int]) -> Iterator[list[int]]:
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid)
        if size is None:
            continue  # expunged meanwhile
        if batch and total + size > MAX_BATCH_BYTES:
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _text(response: Any) -> str:
    lines = getattr(response, "lines", None) or [b""]
    return bytes(lines[-1]).decode("utf-8", "replace")[:300]


# --- one connection ------------------------------------------------------------------------------


class _Session:
    """One aioimaplib connection; every call translates failures into ``TransportError``."""

    def __init__(self, config: MailboxConfig) -> None:
        self.config = config
        self.client: Any = None
        self._lost = asyncio.Event()

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost.set()

    def has(self, capability: str) -> bool:
        return self.client is not None and self.client.has_capability(capability)

    async def _call(
        self,
        what: str,
        awaitable: Awaitable[Any],
        *,
        limit: float | None = None,
        check: bool = True,
    ) -> Any:
        """Await one library call, racing the connection's loss and a timeout."""
        task = asyncio.ensure_future(
            asyncio.wait_for(awaitable, limit or self.config.command_timeout)
        )
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
        if task not in done:
            raise TransportError(f"{self.config.name}: connection lost during {what}")
        try:
            response = task.result()
        except TimeoutError as exc:
            raise TransportError(f"{self.config.name}: {what} timed out") from exc
        except _IMAP_ERRORS as exc:
            detail = str(exc) or type(exc).__name__
            raise TransportError(f"{self.config.name}: {what} failed: {detail}") from exc
        if check and getattr(response, "result", None) != "OK":
            raise TransportError(
                f"{self.config.name}: {what} refused: "
                f"{getattr(response, 'result', '?')} {_text(response)}"
            )
        return response

    def _ssl_context(self) -> ssl.SSLContext:
        ca = str(self.config.ca_file) if self.config.ca_file else None
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)

    async def open(self) -> None:
        """Connect, secure, log in and learn the capabilities."""
        c = self.config
        password = c.password()
        if c.security == "tls":
            self.client = aioimaplib.IMAP4_SSL(
                host=c.host, port=c.port, timeout=c.connect_timeout, ssl_context=self._ssl_context()
            )
        else:
            self.client = aioimaplib.IMAP4(host=c.host, port=c.port, timeout=c.connect_timeout)
        # IMAP4_SSL does not pass conn_lost_cb on; set it on the protocol for both.
        self.client.protocol.conn_lost_cb = self._on_lost
        await self._call(
            f"connect to {c.host}:{c.port}",
            self.client.wait_hello_from_server(),
            limit=c.connect_timeout,
            check=False,
        )
        if c.security == "starttls":
            await self._starttls()
        self.client.timeout = c.command_timeout
        response = await self._call("LOGIN", self.client.login(c.user, password), check=False)
        if response.result != "OK":
            raise TransportError(f"{c.name}: login as {c.user!r} refused: {_text(response)}")
        # The capabilities before login are not those after (MOVE, UIDPLUS): ask again.
        await self._call("CAPABILITY", self.client.protocol.capability(), check=False)

    async def _starttls(self) -> None:
        c = self.config
        protocol = self.client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise TransportError(f"{c.name}: server does not offer STARTTLS (security='starttls')")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        await self._call("STARTTLS", protocol.execute(command))
        loop = asyncio.get_running_loop()
        transport = await self._call(
            "TLS handshake",
            loop.start_tls(
                protocol.transport,
                protocol,
                self._ssl_context(),
                server_hostname=c.host,
                ssl_handshake_timeout=c.connect_timeout,
            ),
            limit=c.connect_timeout + 1,
            check=False,
        )
        protocol.transport = transport
        # RFC 3501 6.2.1: forget what the server said before TLS.
        await self._call("CAPABILITY", protocol.capability(), check=False)

    async def select(self, folder: str) -> int:
        """SELECT ``folder``; return its UIDVALIDITY."""
        response = await self._call(f"SELECT {folder}", self.client.select(_quote(folder)))
        for line in response.lines:
            match = _UIDVALIDITY.search(bytes(line))
            if match:
                return int(match.group(1))
        raise TransportError(f"{self.config.name}: SELECT {folder} gave no UIDVALIDITY")

    async def ensure_folder(self, folder: str) -> None:
        """CREATE ``folder`` unless it exists (a NO for an existing one is fine)."""
        response = await self._call(
            f"CREATE {folder}", self.client.create(_quote(folder)), check=False
        )
        if response.result != "OK":
            log.debug("imap_create_folder_refused", folder=folder, reply=_text(response))

    async def search_all(self) -> list[int]:
        response = await self._call("UID SEARCH", self.client.uid_search("ALL", charset=None))
        return _parse_search(response.lines)

    async def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        response = await self._call(
            "UID FETCH sizes", self.client.uid("fetch", uid_set(uids), "(UID RFC822.SIZE)")
        )
        return _parse_sizes(response.lines)

    async def fetch(self, uids: Sequence[int]) -> dict[int, bytes]:
        response = await self._call(
            "UID FETCH", self.client.uid("fetch", uid_set(uids), "(UID BODY.PEEK[])")
        )
        return _parse_bodies(response.lines)

    async def remove(self, uids: Sequence[int]) -> str:
        """Take committed mails out of the folder as configured; return how it was done."""
        c, uids_text = self.config, uid_set(uids)
        if c.after == "move" and self.has("MOVE"):
            await self._call(
                "UID MOVE", self.client.uid("move", uids_text, _quote(c.processed_folder))
            )
            return "moved"
        if c.after == "move":
            await self._call(
                "UID COPY", self.client.uid("copy", uids_text, _quote(c.processed_folder))
            )
        await self._call(
            "UID STORE \\Deleted",
            self.client.uid("store", uids_text, "+FLAGS.SILENT", "(\\Deleted)"),
        )
        if self.has("UIDPLUS"):
            await self._call("UID EXPUNGE", self.client.uid("expunge", uids_text))
        else:
            # Without UIDPLUS only a plain EXPUNGE exists: it also removes mails someone else
            # flagged \Deleted in this folder (which are meant to go anyway).
            await self._call("EXPUNGE", self.client.expunge())
        return "copied_and_expunged" if c.after == "move" else "expunged"

    async def idle(self, stop: asyncio.Event) -> bool:
        """IDLE until the server reports a change, ``idle_timeout`` passes or ``stop`` is set.

        Returns True when woken by the server.
        """
        client = self.client
        queue = client.protocol.idle_queue
        while not queue.empty():  # pushes left from before: a re-scan covers them
            queue.get_nowait()
        idle_task = await self._call(
            "IDLE", client.idle_start(timeout=self.config.idle_timeout), check=False
        )
        push = asyncio.ensure_future(client.wait_server_push(timeout=self.config.idle_timeout + 5))
        stopping = asyncio.ensure_future(stop.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {push, stopping, lost, idle_task}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in (push, stopping, lost):
                waiter.cancel()
        if self._lost.is_set():
            idle_task.cancel()
            raise TransportError(f"{self.config.name}: connection lost while idling")
        woken = (
            push in done
            and not push.cancelled()
            and push.exception() is None
            and push.result() != aioimaplib.STOP_WAIT_SERVER_PUSH
        )
        if client.has_pending_idle():
            client.idle_done()
        await self._call("IDLE end", idle_task)
        return woken

    async def close(self, *, graceful: bool) -> None:
        """LOGOUT (when ``graceful`` and still connected), then drop the connection."""
        client, self.client = self.client, None
        if client is None:
            return
        if graceful and not self._lost.is_set() and client.get_state() in ("AUTH", "SELECTED"):
            with contextlib.suppress(*_IMAP_ERRORS):
                await asyncio.wait_for(client.logout(), 2.0)
        abort_client(client)


def abort_client(client: Any) -> None:
    """Close an aioimaplib client now: cancel its helper tasks and a connection still being
    made (it would otherwise open after we gave up, and leak), and close the transport."""
    protocol = client.protocol
    for task in (*client.tasks, *protocol.tasks):
        task.cancel()
    if not client._client_task.done():
        client._client_task.cancel()
    transport = protocol.transport
    if transport is not None and not transport.is_closing():
        transport.close()


# --- the poller ----------------------------------------------------------------------------------


class MailboxPoller:
    """Takes mails from one mailbox into the intake until stopped; never raises."""

    def __init__(
        self,
        config: MailboxConfig,
        intake: Intake,
        tracker: MailTracker,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
    ) -> None:
        self.config = config
        self.intake = intake
        self.tracker = tracker
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        #: Mails committed (and removed) by this poller, and intake failures: for progress/tests.
        self.committed = 0
        self.failures = 0
        self.connections = 0

    @property
    def log(self) -> Any:
        """The module logger with this mailbox's name (bound late: logging may be set up later)."""
        return log.bind(imap_mailbox=self.config.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; reconnect with exponential backoff on any failure."""
        c = self.config
        delay = self.backoff_initial
        attempt = 0
        while not stop.is_set():
            session = _Session(c)
            graceful = False
            try:
                uidvalidity = await self._connect(session)
                attempt, delay = 0, self.backoff_initial
                await self._serve(session, uidvalidity, stop)
                graceful = True
            except asyncio.CancelledError:
                await session.close(graceful=False)
                raise
            except (TransportError, StorageError, ConfigurationError) as exc:
                attempt += 1
                self.log.warning(
                    "imap_mailbox_failed",
                    error=str(exc),
                    kind=type(exc).__name__,
                    attempt=attempt,
                    retry_in=round(delay, 2),
                )
            except Exception as exc:
                # A bug of ours must not stop this mailbox for good, or the others.
                attempt += 1
                self.log.exception(
                    "imap_poller_error",
                    error=f"{type(exc).__name__}: {exc}",
                    attempt=attempt,
                    retry_in=round(delay, 2),
                )
            await session.close(graceful=graceful)
            if stop.is_set():
                break
            await _wait(stop, delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
            delay = min(delay * 2, self.backoff_max)
        self.log.info("imap_stopped", committed=self.committed)

    async def _connect(self, session: _Session) -> int:
        c = self.config
        await session.open()
        uidvalidity = await session.select(c.folder)
        previous = await asyncio.to_thread(self.tracker.check_uidvalidity, c.name, uidvalidity)
        if previous is not None:
            self.log.warning(
                "imap_uidvalidity_changed",
                folder=c.folder,
                previous=previous,
                uidvalidity=uidvalidity,
                action="re-scanning the folder; mails seen before are recognised by their bytes",
            )
        if c.after == "move":
            await session.ensure_folder(c.processed_folder)
        self.connections += 1
        self.log.info(
            "imap_connected",
            host=c.host,
            port=c.port,
            security=c.security,
            folder=c.folder,
            uidvalidity=uidvalidity,
            idle=c.idle and session.has("IDLE"),
            move=session.has("MOVE"),
        )
        return uidvalidity

    async def _serve(self, session: _Session, uidvalidity: int, stop: asyncio.Event) -> None:
        c = self.config
        use_idle = c.idle and session.has("IDLE")
        if c.idle and not use_idle:
            self.log.info("imap_idle_not_offered", polling_every=c.poll_interval)
        while not stop.is_set():
            handled, failed = await self._pass(session, uidvalidity, stop)
            if stop.is_set():
                return
            if handled and not failed:
                continue  # more may have arrived meanwhile
            if failed or not use_idle:
                await _wait(stop, c.poll_interval)
            else:
                await session.idle(stop)

    async def _pass(
        self, session: _Session, uidvalidity: int, stop: asyncio.Event
    ) -> tuple[int, int]:
        """Take every mail now in the folder; return (handled, failed)."""
        uids = await session.search_all()
        handled = failed = 0
        size = self.config.batch_size
        for start in range(0, len(uids), size):
            if stop.is_set():
                break
            chunk = uids[start : start + size]
            sizes = await session.sizes(chunk)
            for batch in _batches_by_bytes(chunk, sizes):
                if stop.is_set():
                    break
                h, f = await self._batch(session, uidvalidity, batch, stop)
                handled += h
                failed += f
        return handled, failed

    async def _batch(
        self, session: _Session, uidvalidity: int, uids: list[int], stop: asyncio.Event
    ) -> tuple[int, int]:
        bodies = await session.fetch(uids)
        done_uids: list[int] = []
        done_ids: list[int] = []
        failed = 0
        for uid in uids:
            if stop.is_set():
                break  # what is committed so far is still removed below
            raw = bodies.get(uid)
            if raw is None:
                self.log.warning("imap_mail_not_fetched", uid=uid)
                continue
            try:
                tracked_id = await self._take(uidvalidity, uid, raw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Not committed: the mail stays in the folder and is tried again later.
                failed += 1
                self.failures += 1
                self.log.error(
                    "imap_intake_failed",
                    uid=uid,
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in=self.config.poll_interval,
                )
                continue
            done_uids.append(uid)
            if tracked_id is not None:
                done_ids.append(tracked_id)
        if done_uids:
            how = await session.remove(done_uids)
            self.committed += len(done_uids)
            try:
                await asyncio.to_thread(self.tracker.mark_moved, done_ids)
            except StorageError as exc:
                self.log.error("imap_tracker_not_updated", error=str(exc), mails=len(done_ids))
            self.log.info("imap_batch_done", mails=len(done_uids), removed=how, failed=failed)
        return len(done_uids), failed

    async def _take(self, uidvalidity: int, uid: int, raw: bytes) -> int | None:
        """Commit one mail through the intake (unless it already is); return its tracker id."""
        c, tracker = self.config, self.tracker
        sha256 = hashlib.sha256(raw).hexdigest()
        message_id = message_id_of(raw)
        known = await asyncio.to_thread(tracker.lookup, c.name, uidvalidity, uid)
        for mail in known:
            if mail.sha256 == sha256:
                # Committed before, but the move did not happen (crash, lost connection).
                self.log.info("imap_mail_already_committed", uid=uid, source_ref=mail.source_ref)
                return mail.id
        source_ref = c.source_ref(uidvalidity, uid)
        if known:
            # Same server position, other bytes: the server reused a UID. Keep both apart.
            source_ref = f"{source_ref}:{sha256[:16]}"
            self.log.warning(
                "imap_uid_reused", uid=uid, earlier=known[0].source_ref, source_ref=source_ref
            )
        earlier = await asyncio.to_thread(tracker.find_earlier, sha256, message_id)
        duplicate_of: int | None = None
        if earlier is not None:
            first, matched_by = earlier
            duplicate_of = first.id
            self.log.info(
                "imap_duplicate_delivery",
                uid=uid,
                matched_by=matched_by,
                first=first.source_ref,
                note="passed on; the pipeline's duplicate check answers it",
            )
        with structlog.contextvars.bound_contextvars(source_ref=source_ref):
            await self.intake(
                raw,
                source=c.source,
                source_ref=source_ref,
                source_name=message_id or f"{c.folder}/{uid}",
            )
            try:
                tracked = await asyncio.to_thread(
                    tracker.record_committed,
                    mailbox=c.name,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    message_id=message_id,
                    sha256=sha256,
                    source_ref=source_ref,
                    duplicate_of=duplicate_of,
                )
            except StorageError as exc:
                # The intake committed: removing the mail is safe; only our bookkeeping is short.
                self.log.error("imap_tracker_not_updated", error=str(exc))
                return None
            self.log.info("imap_mail_committed", uid=uid, bytes=len(raw))
            return tracked.id


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_mailboxes(
    configs: Sequence[MailboxConfig],
    intake: Intake,
    tracker: MailTracker,
    stop: asyncio.Event,
    **poller_options: float,
) -> None:
    """Run one poller per mailbox until ``stop``; each fails and recovers on its own."""
    async with asyncio.TaskGroup() as group:
        for config in configs:
            poller = MailboxPoller(config, intake, tracker, **poller_options)
            group.create_task(poller.run(stop), name=f"imap:{config.name}")


async def check_login(config: MailboxConfig) -> None:
    """Connect, log in and select the folder once (a health check); raise ``TransportError``."""
    session = _Session(config)
    graceful = False
    try:
        await session.open()
        await session.select(config.folder)
        graceful = True
    finally:
        await session.close(graceful=graceful)
