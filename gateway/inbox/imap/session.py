"""One IMAP connection (aioimaplib): connect, TLS or STARTTLS, LOGIN, SELECT, FETCH, MOVE.

Every call races the connection's loss and a timeout and translates aioimaplib's (and the
socket's) failures into ``TransportError``, where the library is called. The commands' replies
are parsed by ``gateway.inbox.imap.protocol``.

aioimaplib has no STARTTLS; ``Session._starttls`` adds it with ``loop.start_tls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import aioimaplib

from gateway.errors import TransportError
from gateway.inbox.imap.config import MailboxConfig
from gateway.inbox.imap.protocol import (
    parse_bodies,
    parse_search,
    parse_sizes,
    parse_uidvalidity,
    quote,
    response_text,
    uid_set,
)
from gateway.logs import get_logger

log = get_logger("imap")

# Errors aioimaplib (or the socket/TLS layer under it) raises for a failed command/connection.
_IMAP_ERRORS = (aioimaplib.AioImapException, OSError, TimeoutError, EOFError)


class LoginRefused(TransportError):
    """The server answered LOGIN with NO or BAD (``reply`` is its text, never the password)."""

    def __init__(self, text: str, reply: str) -> None:
        super().__init__(text)
        self.reply = reply


class Session:
    """One aioimaplib connection; every call translates failures into ``TransportError``.

    ``password`` replaces the config's password source (the health check is given one);
    ``step`` says what ``open`` was doing when it failed: connect, STARTTLS or login.
    """

    def __init__(self, config: MailboxConfig, *, password: str | None = None) -> None:
        self.config = config
        self.client: Any = None
        self.step = "connect"
        self._password = password
        self._lost = asyncio.Event()
        #: Library calls given up on (a timeout, a lost connection): still winding down, awaited
        #: by ``close`` so that whatever they opened is closed by then.
        self._abandoned: set[asyncio.Future[Any]] = set()

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
                self._abandoned.add(task)
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
                f"{getattr(response, 'result', '?')} {response_text(response)}"
            )
        return response

    def _ssl_context(self) -> ssl.SSLContext:
        ca = str(self.config.ca_file) if self.config.ca_file else None
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)

    async def open(self) -> None:
        """Connect, secure, log in and learn the capabilities."""
        c = self.config
        password = self._password if self._password is not None else c.password()
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
            self.step = "STARTTLS"
            await self._starttls()
        self.step = "login"
        self.client.timeout = c.command_timeout
        response = await self._call("LOGIN", self.client.login(c.user, password), check=False)
        if response.result != "OK":
            reply = response_text(response)
            raise LoginRefused(f"{c.name}: login as {c.user!r} refused: {reply}", reply)
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
        response = await self._call(f"SELECT {folder}", self.client.select(quote(folder)))
        uidvalidity = parse_uidvalidity(response.lines)
        if uidvalidity is not None:
            return uidvalidity
        raise TransportError(f"{self.config.name}: SELECT {folder} gave no UIDVALIDITY")

    async def ensure_folder(self, folder: str) -> None:
        """CREATE ``folder`` unless it exists (a NO for an existing one is fine)."""
        response = await self._call(
            f"CREATE {folder}", self.client.create(quote(folder)), check=False
        )
        if response.result != "OK":
            log.debug("imap_create_folder_refused", folder=folder, reply=response_text(response))

    async def search_all(self) -> list[int]:
        response = await self._call("UID SEARCH", self.client.uid_search("ALL", charset=None))
        return parse_search(response.lines)

    async def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        response = await self._call(
            "UID FETCH sizes", self.client.uid("fetch", uid_set(uids), "(UID RFC822.SIZE)")
        )
        return parse_sizes(response.lines)

    async def fetch(self, uids: Sequence[int]) -> dict[int, bytes]:
        response = await self._call(
            "UID FETCH", self.client.uid("fetch", uid_set(uids), "(UID BODY.PEEK[])")
        )
        return parse_bodies(response.lines)

    async def remove(self, uids: Sequence[int]) -> str:
        """Take committed mails out of the folder as configured; return how it was done."""
        c, uids_text = self.config, uid_set(uids)
        if c.after == "move" and self.has("MOVE"):
            await self._call(
                "UID MOVE", self.client.uid("move", uids_text, quote(c.processed_folder))
            )
            return "moved"
        if c.after == "move":
            await self._call(
                "UID COPY", self.client.uid("copy", uids_text, quote(c.processed_folder))
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
        """LOGOUT (when ``graceful`` and still connected), then drop the connection.

        When this returns the socket is closed, also for a connection given up half-way (a
        timeout during connect, the TLS handshake or STARTTLS): nothing is left for the garbage
        collector, whose ``ResourceWarning`` would otherwise surface wherever it runs next.
        """
        client, self.client = self.client, None
        if client is None:
            return
        if graceful and not self._lost.is_set() and client.get_state() in ("AUTH", "SELECTED"):
            with contextlib.suppress(*_IMAP_ERRORS):
                await asyncio.wait_for(client.logout(), 2.0)
        abort_client(client)
        abandoned, self._abandoned = self._abandoned, set()
        await settle_client(client, abandoned)


#: How long ``settle_client`` waits for cancelled library calls to wind down.
SETTLE_SECONDS = 2.0


def abort_client(client: Any) -> None:
    """Close an aioimaplib client now: cancel its helper tasks and a connection still being
    made (it would otherwise open after we gave up, and leak), and abort the transport (no TLS
    close_notify exchange: nothing more is said on this connection, and a graceful TLS close
    waits for the server, up to asyncio's 30 s shutdown timeout, with the socket open)."""
    protocol = client.protocol
    for task in (*client.tasks, *protocol.tasks):
        task.cancel()
    if not client._client_task.done():
        client._client_task.cancel()
    transport = protocol.transport
    if transport is not None:
        transport.abort()


async def settle_client(client: Any, abandoned: Iterable[asyncio.Future[Any]] = ()) -> None:
    """Wait (bounded) until what ``abort_client`` started is done: a cancelled connect or TLS
    handshake has closed its transport, and the aborted transport its socket.

    Cancelling a task only asks; the task cleans up (``transport.close()`` in asyncio's
    ``create_connection``/``start_tls``) when it next runs, and a closed transport shuts its
    socket one loop iteration later. Until then the socket is open, and a loop that ends first
    (a test, a shutdown) leaves it to the garbage collector.
    """
    pending = {
        task
        for task in (client._client_task, *client.tasks, *client.protocol.tasks, *abandoned)
        if not task.done()
    }
    if pending:
        await asyncio.wait(pending, timeout=SETTLE_SECONDS)
    # The aborted transport closes its socket in the next iteration (call_soon): let it run.
    await asyncio.sleep(0)


async def check_login(config: MailboxConfig) -> None:
    """Connect, log in and select the folder once (a health check); raise ``TransportError``."""
    session = Session(config)
    graceful = False
    try:
        await session.open()
        await session.select(config.folder)
        graceful = True
    finally:
        await session.close(graceful=graceful)
