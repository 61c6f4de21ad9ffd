"""Worker preparers for the intake's tests: messages that take their time, hang or kill their
worker, chosen by the name a message arrived as. Module-level factories, because a factory
travels to the worker process by reference.
"""

from __future__ import annotations

import os
import time

from gateway.config import Config
from gateway.intake.jobs import Job, WorkerResult
from gateway.intake.preparing import Preparer

#: Every message takes at least this long: two messages given at once certainly overlap.
OVERLAP_SECONDS = 0.3
#: A message named ``hang-...`` takes this long (far past any test's budget).
HANG_SECONDS = 3600.0


class _Testing(Preparer):
    """A ``Preparer`` that behaves by the message's name (see the factories)."""

    def __init__(self, config: Config, *, observe_stages: bool, overlap: bool) -> None:
        super().__init__(config, observe_stages=observe_stages)
        self._overlap = overlap
        self._died_once = (config.database.path or config.path).parent / "died-once"

    def prepare(self, job: Job) -> WorkerResult:
        name = job.source_name
        if name.startswith("hang-"):
            time.sleep(HANG_SECONDS)
        if name.startswith("die-always-") or (
            name.startswith("die-once-") and not self._died_once.exists()
        ):
            self._died_once.touch()
            os._exit(3)  # the worker dies under the message, as a crash in C code would
        if self._overlap:
            time.sleep(OVERLAP_SECONDS)
        return super().prepare(job)


def misbehaving(config: Config, *, observe_stages: bool = False) -> Preparer:
    """``hang-*`` hangs, ``die-once-*`` kills its worker the first time, ``die-always-*``
    every time; other messages are processed as usual."""
    return _Testing(config, observe_stages=observe_stages, overlap=False)


def overlapping(config: Config, *, observe_stages: bool = False) -> Preparer:
    """Every message takes ``OVERLAP_SECONDS`` more (and the names above work too)."""
    return _Testing(config, observe_stages=observe_stages, overlap=True)
