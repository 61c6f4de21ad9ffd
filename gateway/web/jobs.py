"""Long work started from a page (a rebehandling, a statistics export) runs in a worker thread
while the browser shows its progress: the job page refreshes itself each second until the work
is done, then sends the user on to the result.

Jobs live in memory only: a restart of ``gateway web`` forgets them (the work they did, such as
an applied rebehandling, is in the database). Only the user who started a job can see it.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread

from gateway.clock import utc_now
from gateway.logs import get_logger

log = get_logger("web.jobs")

#: Jobs kept (finished ones are forgotten oldest first beyond this).
KEEP = 100


@dataclass(slots=True)
class Job:
    """One piece of long work and how far it has come."""

    id: str
    owner: str
    kind: str
    title: str
    params: dict[str, Any]
    started: datetime = field(default_factory=utc_now)
    done: int = 0
    total: int = 0
    stage: str = "starter"
    finished: datetime | None = None
    result: Any = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def percent(self) -> int | None:
        if self.total <= 0:
            return None
        return min(100, 100 * self.done // self.total)

    def progress(self, done: int, total: int) -> None:
        """A progress callback for the work (called from its thread)."""
        self.done, self.total = done, total

    def note(self, stage: str) -> None:
        """A stage line for the work (called from its thread)."""
        self.stage = stage


Work = Callable[[Job], Any]


class JobRunner:
    """Starts jobs in worker threads and keeps the latest ``KEEP`` of them."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._group: anyio.abc.TaskGroup | None = None

    def attach(self, group: anyio.abc.TaskGroup) -> None:
        """The server's task group, in which jobs run (set by the app's lifespan)."""
        self._group = group

    def start(
        self, owner: str, kind: str, title: str, work: Work, **params: Any
    ) -> Job:
        if self._group is None:
            raise RuntimeError("the job runner is not attached to a running server")
        job = Job(id=secrets.token_urlsafe(12), owner=owner, kind=kind, title=title,
                  params=params)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP:
                oldest = next(iter(self._jobs.values()))
                if oldest.running:
                    break
                self._jobs.popitem(last=False)
        self._group.start_soon(self._run, job, work)
        return job

    async def _run(self, job: Job, work: Work) -> None:
        try:
            job.result = await anyio.to_thread.run_sync(work, job, abandon_on_cancel=True)
            job.stage = "ferdig"
        except Exception as exc:
            job.error = str(exc) or type(exc).__name__
            job.stage = "feilet"
            log.exception("web_job_failed", kind=job.kind, job=job.id)
        finally:
            job.finished = utc_now()

    def get(self, job_id: str, owner: str) -> Job | None:
        """The job, if ``owner`` started it."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None
