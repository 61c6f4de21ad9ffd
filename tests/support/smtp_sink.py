"""A real SMTP server for tests and benchmarks: aiosmtpd on 127.0.0.1, collecting what it gets.

The server runs in aiosmtpd's own thread (``Controller``), so it answers while the test's event
loop is busy sending::

    with SmtpSink() as sink:            # a free port on 127.0.0.1
        ...                             # send to 127.0.0.1:sink.port
        sink.wait_for(3)                # or: await sink.wait_for_async(3)
        sink.messages[0].recipients, sink.messages[0].data
        sink.stop(); sink.start()       # down for a while, then back on the same port
        sink.fail_with("451 4.3.0 Try again later", times=2)   # the next two DATA answers
        sink.fail_with("554 5.7.1 Rejected")                   # every DATA until fail_with(None)

Received messages are kept in memory and, with ``maildir=``, also written to a Maildir. With
``users={"name": "password"}`` the server offers AUTH (PLAIN/LOGIN, without TLS) and records
the login of each message (``ReceivedMail.user``).
"""

from __future__ import annotations

import asyncio
import mailbox
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session

from tests.support.net import LocalServer, localhost_certificate
from tests.support.net import free_port as free_port  # re-exported


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message as the sink accepted it: the SMTP envelope and the exact bytes."""

    mail_from: str
    recipients: tuple[str, ...]
    data: bytes
    session: int  # which connection carried it (1, 2, …): shows connection reuse
    user: str | None = None  # the AUTH login, if the client authenticated


class _Handler:
    """aiosmtpd handler: records messages, or answers the configured failure."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        failure = self._sink._take_failure()
        if failure is not None:
            return failure
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):  # pragma: no cover - decode_data is off
            data = data.encode("utf-8")
        self._sink._record(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                recipients=tuple(str(r) for r in envelope.rcpt_tos),
                data=bytes(data),
                session=self._sink._session_number(session),
                user=_login(session),
            )
        )
        return "250 2.0.0 OK"


def _login(session: Session) -> str | None:
    login = session.auth_data if session.authenticated else None
    return None if login is None else str(login)


class SmtpSink(LocalServer):
    """An in-process aiosmtpd server on 127.0.0.1 that collects messages."""

    def __init__(
        self,
        *,
        port: int | None = None,
        maildir: Path | None = None,
        users: Mapping[str, str] | None = None,
        tls_dir: Path | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        #: With ``tls_dir``: a self-signed certificate for 127.0.0.1 is written there, STARTTLS
        #: is offered and required; clients trust ``cert_file``.
        self.cert_file: Path | None = None
        self._tls: ssl.SSLContext | None = None
        if tls_dir is not None:
            self.cert_file, key_file = localhost_certificate(
                tls_dir, files=("smtp-sink.crt", "smtp-sink.key")
            )
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(self.cert_file, key_file)
        self.port = port or free_port()
        self.maildir = maildir
        self.users = dict(users or {})
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._failure: str | None = None
        self._failures_left: int | None = None
        self._sessions: dict[str, int] = {}
        self._controller: Controller | None = None
        self.failures_answered = 0

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving (again) on ``port``."""
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {}
        if self.users:
            # AUTH offered without TLS; not *required* (aiosmtpd warns about that combination):
            # ``ReceivedMail.user`` shows whether a client authenticated.
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if self._tls is not None:
            kwargs.update(tls_context=self._tls, require_starttls=True)
        controller = Controller(
            _Handler(self), hostname=self.host, port=self.port, ready_timeout=5.0, **kwargs
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop serving; open connections are dropped. Messages received so far are kept."""
        if self._controller is None:
            return
        self._controller.stop()
        self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def close(self) -> None:
        self.stop()

    # --- behaviour -------------------------------------------------------------------------------

    def fail_with(self, reply: str | None, *, times: int | None = None) -> None:
        """Answer DATA with ``reply`` (e.g. ``"451 4.3.0 Try later"``) for the next ``times``
        messages, or until called with None when ``times`` is None."""
        with self._lock:
            self._failure = reply
            self._failures_left = times

    def _take_failure(self) -> str | None:
        with self._lock:
            if self._failure is None:
                return None
            reply = self._failure
            if self._failures_left is not None:
                self._failures_left -= 1
                if self._failures_left <= 0:
                    self._failure, self._failures_left = None, None
            self.failures_answered += 1
            return reply

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        login = getattr(data, "login", b"")
        password = getattr(data, "password", b"")
        name = login.decode() if isinstance(login, bytes) else str(login)
        secret = password.decode() if isinstance(password, bytes) else str(password)
        ok = bool(name) and self.users.get(name) == secret
        return AuthResult(success=ok, auth_data=name if ok else None)

    # --- what was received ---------------------------------------------------------------------

    def _session_number(self, session: Session) -> int:
        with self._lock:
            # The client's (address, port) is unique per open connection.
            return self._sessions.setdefault(str(session.peer), len(self._sessions) + 1)

    def _record(self, mail: ReceivedMail) -> None:
        if self.maildir is not None:
            mailbox.Maildir(self.maildir, create=True).add(mail.data)
        with self._lock:
            self._messages.append(mail)

    @property
    def messages(self) -> list[ReceivedMail]:
        """A copy of everything received, in order of arrival."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.messages)} of {count} messages arrived")
            time.sleep(0.01)
        return self.messages

    async def wait_for_async(self, count: int, within: float = 10.0) -> list[ReceivedMail]:
        """``wait_for`` without blocking the event loop."""
        deadline = time.monotonic() + within
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.messages)} of {count} messages arrived")
            await asyncio.sleep(0.01)
        return self.messages
