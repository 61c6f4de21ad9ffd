"""The intake's settings, from ``[daemon]``: workers, the time budget per message, batches.

========================== ============ ==========================================================
key                        default      meaning
========================== ============ ==========================================================
``workers``                CPUs usable  worker processes that process messages side by side; ``0``
                                        processes them in one thread of the daemon itself (no
                                        time budget: for debugging and profiling)
``message_budget_seconds`` ``30``       the longest one message may take in a worker; past it the
                                        worker is killed and replaced, and the message is parked
                                        alone (``Outcome.FAILED``)
``batch_size``             ``64``       most messages committed in one transaction
========================== ============ ==========================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gateway.config import Config

__all__ = ["IntakeSettings"]

#: More worker processes than this help nobody on one machine.
MAX_WORKERS = 64
MAX_BATCH = 1000


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    """How the intake processes and commits messages (see the module)."""

    workers: int
    message_budget_seconds: float
    batch_size: int

    @property
    def capacity(self) -> int:
        """Messages worth holding at once: every worker busy, more waiting for them, and a
        batch forming in the writer."""
        return 4 * max(1, self.workers) + 16

    @classmethod
    def from_config(cls, config: Config) -> IntakeSettings:
        """Read ``[daemon]``; ``ConfigurationError`` names a bad key."""
        table = config.table("daemon")
        return cls(
            workers=table.integer(
                "workers", min(usable_cpus(), MAX_WORKERS), low=0, high=MAX_WORKERS
            ),
            message_budget_seconds=table.number("message_budget_seconds", 30.0, positive=True),
            batch_size=table.integer("batch_size", 64, low=1, high=MAX_BATCH),
        )
