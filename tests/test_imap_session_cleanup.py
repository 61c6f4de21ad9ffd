"""An IMAP session given up half-way leaves no socket open once ``close`` returns.

A stalled server (a greeting that never comes, a TLS handshake that never ends, STARTTLS that is
accepted and then stalls) is met with a timeout; the connection being made must be closed by
the time ``Session.close`` (and so ``check_imap_login``) returns, not some loop iterations later:
an event loop that ends right after would leave the socket to the garbage collector, whose
``ResourceWarning`` fails the test that happened to be running (the flaky
``test_imap_wrong_password_and_untrusted_tls``). The servers are plain threads, so nothing but
the client runs on the loop.
"""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest

from gateway.service import health
from gateway.service.health import Status


@contextmanager
def stalling_server(conversation: Callable[[socket.socket], None]) -> Iterator[int]:
    """A server on 127.0.0.1 that runs ``conversation`` on each connection, then stalls until
    the client goes away; yields its port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.2)
    done = threading.Event()
    connections: list[socket.socket] = []

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connections.append(connection)
            with suppress(OSError):
                conversation(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join(5)
        listener.close()
        for connection in connections:
            connection.close()


def silent(connection: socket.socket) -> None:
    """Accept, say nothing (no greeting, no TLS handshake)."""


def starttls_then_silent(connection: socket.socket) -> None:
    """Greet offering STARTTLS, accept it, then never answer the TLS handshake."""
    connection.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
    reader = connection.makefile("rb")
    for line in reader:
        tag, _, command = line.strip().partition(b" ")
        if command.upper() == b"CAPABILITY":
            connection.sendall(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n" + tag + b" OK done\r\n")
        elif command.upper() == b"STARTTLS":
            connection.sendall(tag + b" OK Begin TLS negotiation now\r\n")
            return


def open_sockets_to(port: int) -> list[socket.socket]:
    """Client sockets of this process still open to ``port`` (as the garbage collector sees)."""
    found = []
    for thing in gc.get_objects():
        if (
            isinstance(thing, socket.socket)
            and thing.family == socket.AF_INET
            and thing.fileno() != -1
        ):
            with suppress(OSError):
                if thing.getpeername()[1] == port:
                    found.append(thing)
    return found


@pytest.mark.parametrize(
    ("security", "conversation", "step"),
    [
        ("none", silent, "connect"),
        ("tls", silent, "connect"),
        ("starttls", starttls_then_silent, "STARTTLS"),
    ],
)
async def test_a_check_that_times_out_leaves_no_socket_open(
    security: str, conversation: Callable[[socket.socket], None], step: str
) -> None:
    with stalling_server(conversation) as port:
        result = await health.check_imap_login(
            "127.0.0.1", port, security, "claims", "secret", 0.5
        )
        # Checked before the loop runs again: close() itself must have closed the connection.
        leaked = open_sockets_to(port)
        for sock in leaked:
            sock.close()
    assert result.status is Status.FAIL
    assert result.detail.startswith(f"{step} failed"), result.detail
    assert not leaked, f"{len(leaked)} socket(s) left open after check_imap_login returned"
