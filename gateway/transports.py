"""The shapes of the parts ``gateway run`` is made of: services, inboxes, the intake, outboxes.

- A ``Service`` is anything long-running: it works until its stop event is set, then returns
  soon after (finishing what it has in hand). The daemon runs every service the same way
  (``gateway.daemon``); which ones run is decided in ``gateway.wiring``.
- An ``Inbox`` is a service that takes messages from one place (the spool directory, an IMAP
  mailbox) and hands each to the ``Intake``. A message leaves its place only after the intake
  returned, that is after it is committed: a crash in between never loses one.
- The ``Intake`` (``gateway.intake``) runs the pipeline and commits.
- An ``Outbox`` is a service that delivers the committed rows of the replies table (as files,
  over SMTP). It is told when new rows are committed.

Each protocol is structural: an adapter implements the members, it does not inherit.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from gateway.records import Outcome


class Service(Protocol):
    """Something the daemon runs until it stops."""

    @property
    def name(self) -> str:
        """Names the service in logs and task names (``smtp``, ``imap:claims``)."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then return soon. An error in one unit of work is
        logged and retried, never raised: one broken mailbox or server stops nothing else."""
        ...


class Intake(Protocol):
    """What an inbox hands each message to."""

    #: How many messages it can usefully hold at once: an inbox may hand on this many without
    #: waiting for the first to return (the spool does), so every worker has one and batches
    #: form. Handing on one at a time is always correct, only slower.
    capacity: int

    async def __call__(
        self, raw: bytes, *, source: str, source_ref: str, source_name: str
    ) -> Outcome:
        """Process and commit one message; return once it and all it produced are committed.

        Idempotent per ``source_ref`` (a ref already committed is recognised, nothing is done
        again). Raises (e.g. ``StorageError``) when nothing could be committed: the message
        then stays where it is and is tried again. ``Outcome.FAILED`` means a bug of ours: the
        raw bytes are committed for a person (the spool also parks its file in ``bad/``).
        """
        ...


class Inbox(Service, Protocol):
    """A service that takes messages from one place into its intake."""

    intake: Intake


class Outbox(Service, Protocol):
    """A service that delivers the pending rows of the replies table."""

    def notify(self) -> None:
        """New rows are committed: deliver them soon. Callable from any thread. A file outbox
        writes them at once, in the caller's thread; the SMTP sender is woken."""
        ...
