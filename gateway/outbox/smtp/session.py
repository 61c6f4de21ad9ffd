"""One SMTP session (aiosmtplib), and the translation of its failures.

``smtp_client`` makes the client for a host, port and kind of security (TLS verification is
never switched off; ``cafile`` adds a private CA): the outbox's sessions and ``gateway health``
use the same one. ``translate`` turns an aiosmtplib or socket exception into an ``SmtpFailure``
that says whether the row is dead (``permanent``) and whether the server itself is the problem
(``connection``: the sender pauses).
"""

from __future__ import annotations

import asyncio
import ssl
import time

import aiosmtplib

from gateway.errors import TransportError
from gateway.logs import get_logger
from gateway.outbox.smtp.config import SmtpConfig

log = get_logger("outbox.smtp")


def smtp_client(
    host: str,
    port: int,
    security: str,
    *,
    timeout: float,
    cafile: str | None = None,
    user: str | None = None,
    password: str | None = None,
) -> aiosmtplib.SMTP:
    """An unconnected client: implicit TLS (``tls``), STARTTLS before login, or plain."""
    return aiosmtplib.SMTP(
        hostname=host,
        port=port,
        timeout=timeout,
        use_tls=security == "tls",
        start_tls=security == "starttls",  # False, not None: never upgrade on its own
        tls_context=ssl.create_default_context(cafile=cafile) if security != "none" else None,
        username=user,
        password=password,
    )


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


class Connection:
    """One reused SMTP session."""

    def __init__(self, config: SmtpConfig, number: int) -> None:
        self.config = config
        self.number = number
        self.client: aiosmtplib.SMTP | None = None
        self.last_used = time.monotonic()
        self.opened = 0  # how many times a session was opened: shows reuse

    async def _open(self) -> aiosmtplib.SMTP:
        config = self.config
        client = smtp_client(
            config.host,
            config.port,
            config.security,
            timeout=config.timeout,
            cafile=str(config.ca_file) if config.ca_file else None,
            user=config.user,
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

