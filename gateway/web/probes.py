"""What the operations page asks of things outside the database: how many mails wait in each
IMAP mailbox, and how old the cached certificate revocation lists are.

- ``MailboxProbe`` logs in to each ``[[imap.mailboxes]]`` as the intake does (its own session,
  with short timeouts) and asks the folder's message count with ``STATUS`` (which neither
  selects the folder nor changes a flag). Answers are kept ``MAILBOX_CACHE_SECONDS``, so a page
  reloaded by several operators does not log in each time.
- ``revocation_state`` reads the CRL cache with ``gateway.security.revocation.revocation_health``
  (the same report as ``gateway health``), for the partner certificates of the CPAs; None when
  revocation checking is not configured (no ``[revocation]``, or ``enabled = false``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aioimaplib
from cryptography import x509

from gateway.clock import utc_now
from gateway.config import Config
from gateway.errors import ConfigurationError, GatewayError
from gateway.inbox.imap.config import MailboxConfig
from gateway.inbox.imap.protocol import quote
from gateway.inbox.imap.session import LoginRefused, Session
from gateway.logs import get_logger
from gateway.partners.registry import PartnerRegistry
from gateway.security.revocation import RevocationHealth, revocation_health
from gateway.security.revocation.configured import revocation_config

log = get_logger("web.probes")

#: A mailbox that does not answer within this long is shown as not answering.
MAILBOX_TIMEOUT_SECONDS = 5.0
MAILBOX_CACHE_SECONDS = 30.0
_MESSAGES = re.compile(rb"\bMESSAGES (\d+)")


@dataclass(frozen=True, slots=True)
class MailboxDepth:
    """One mailbox: how many mails wait in its folder, or why that is not known."""

    name: str
    where: str  # user@host:port/folder
    messages: int | None
    problem: str | None = None


class MailboxProbe:
    """The depth of each configured mailbox, asked at most every ``MAILBOX_CACHE_SECONDS``."""

    def __init__(
        self,
        mailboxes: Sequence[MailboxConfig],
        *,
        timeout: float = MAILBOX_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mailboxes = tuple(mailboxes)
        self.timeout = timeout
        self._clock = clock
        self._cached: tuple[float, list[MailboxDepth]] | None = None
        self._lock = asyncio.Lock()

    async def depths(self) -> list[MailboxDepth]:
        """Every mailbox's depth, asked concurrently (none takes longer than ``timeout``)."""
        if not self.mailboxes:
            return []
        async with self._lock:
            cached = self._cached
            if cached is not None and self._clock() - cached[0] < MAILBOX_CACHE_SECONDS:
                return cached[1]
            found = list(await asyncio.gather(*(self._depth(m) for m in self.mailboxes)))
            self._cached = (self._clock(), found)
            return found

    async def _depth(self, mailbox: MailboxConfig) -> MailboxDepth:
        where = f"{mailbox.user}@{mailbox.host}:{mailbox.port}/{mailbox.folder}"
        limit = self.timeout
        quick = dataclasses.replace(
            mailbox,
            connect_timeout=min(mailbox.connect_timeout, limit),
            command_timeout=min(mailbox.command_timeout, limit),
        )
        session = Session(quick)
        graceful = False
        try:
            async with asyncio.timeout(limit * 2):
                await session.open()
                response = await asyncio.wait_for(
                    session.client.status(quote(mailbox.folder), "(MESSAGES)"), limit
                )
            graceful = True
        except LoginRefused:
            return MailboxDepth(mailbox.name, where, None, "innlogging avvist")
        except TimeoutError:
            return MailboxDepth(mailbox.name, where, None, "svarer ikke")
        except (GatewayError, OSError, aioimaplib.AioImapException) as exc:
            log.info("mailbox_depth_failed", mailbox=mailbox.name, reason=str(exc))
            return MailboxDepth(mailbox.name, where, None, f"ikke tilgjengelig: {exc}")
        finally:
            await session.close(graceful=graceful)
        for line in getattr(response, "lines", []):
            found = _MESSAGES.search(bytes(line))
            if response.result == "OK" and found:
                return MailboxDepth(mailbox.name, where, int(found.group(1)))
        return MailboxDepth(mailbox.name, where, None, "mappen finnes ikke eller kan ikke leses")


def partner_certificates(config: Config) -> tuple[x509.Certificate, ...]:
    """Every partner certificate of the CPAs (what revocation checking covers); none without
    a partners directory."""
    if config.partners.directory is None:
        return ()
    registry = PartnerRegistry.load(config.partners.directory)
    return registry.partner_certificates(config.identity.her_id)


def revocation_state(config: Config) -> RevocationHealth | None:
    """The CRL cache's health now (blocking: run it in a thread); None when revocation is not
    configured. Never raises for a broken cache or directory: the report says what is wrong."""
    try:
        revocation = revocation_config(config)
    except ConfigurationError as exc:
        return RevocationHealth("fail", str(exc))
    if revocation is None:
        return None
    try:
        certificates = partner_certificates(config)
    except (GatewayError, OSError) as exc:
        return RevocationHealth("fail", f"the partners' CPAs cannot be read: {exc}")
    return revocation_health(revocation, utc_now(), certificates)
