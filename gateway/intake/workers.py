"""Where messages are processed: worker processes, each with its own pipeline, or one thread.

``WorkerPool`` keeps ``workers`` processes (``multiprocessing``, forkserver: started from a clean
process that has already imported gateway, so a replacement starts in a fraction of a second).
Each one builds its pipeline from the configuration and reads the store read-only
(``gateway.intake.preparing``); it takes one message at a time and sends back what it made of
it. One dispatcher thread in the daemon owns every worker's pipe: it hands queued messages to
idle workers, receives their results, and enforces the **time budget**: a worker whose message
takes longer than ``message_budget_seconds`` is killed (SIGKILL: whatever it is stuck in, even
a C library) and replaced at once, and only that message is reported ``OVER_BUDGET``; every
other message, queued or in another worker, goes on as if nothing happened. A worker that dies
under a message (a crash, the kernel's OOM killer) is replaced the same way; its message is
tried once more before it counts as broken.

Workers ignore SIGTERM, SIGINT and SIGHUP: a stop is the daemon's to decide (it drains, then
closes the pool), so ``systemctl stop``, which signals the whole control group, or a Ctrl-C in a
terminal never loses a message half-processed. A worker whose daemon died sees its pipe close
and exits.

``InThread`` (``workers = 0``) prepares each message in one thread of the daemon itself: no
processes, no budget; for debugging, profiling and the smallest machines.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import resource
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Protocol

from gateway.config import Config
from gateway.intake.jobs import Broken, BrokenKind, Job, WorkerResult
from gateway.intake.preparing import Preparer
from gateway.logs import configure_logging, get_logger

__all__ = ["InThread", "PreparerFactory", "WorkerPool", "Workers"]

log = get_logger("daemon")

#: Wait this long before starting a worker again whose start failed.
RESTART_BACKOFF_SECONDS = 5.0
#: How long a closing worker may take to finish and exit before it is killed.
CLOSE_SECONDS = 5.0


class Workers(Protocol):
    """Where the intake sends each message to be processed."""

    def submit(self, job: Job) -> Future[WorkerResult]:
        """Process ``job`` (queued until a worker is free); the future never raises."""
        ...

    def reload_partners(self) -> None:
        """Read the CPA directory again before the next message (SIGHUP)."""
        ...

    def close(self, *, wait: bool = True) -> None:
        """Stop: after the messages in hand (``wait``), or at once, killing them."""
        ...

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds used by worker processes that have ended (0 for a thread: its time is
        the daemon's own)."""
        ...


# --- in this process ----------------------------------------------------------------------------


class InThread:
    """``workers = 0``: one thread of the daemon prepares each message in turn."""

    def __init__(
        self, config: Config, *, observe_stages: bool = False, make: PreparerFactory = Preparer
    ) -> None:
        self._preparer = make(config, observe_stages=observe_stages)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")

    def submit(self, job: Job) -> Future[WorkerResult]:
        return self._executor.submit(self._preparer.prepare, job)

    def reload_partners(self) -> None:
        self._executor.submit(self._preparer.reload_partners)

    def close(self, *, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)
        if wait:
            self._preparer.close()

    @property
    def cpu_seconds(self) -> float:
        return 0.0


# --- worker processes ---------------------------------------------------------------------------


class _Reload:
    """Sent to a worker: read the CPA directory again."""


_READY = "ready"


@dataclass(frozen=True, slots=True)
class _Status:
    """A worker's word about itself (not a result: results may be tuples): ``ready``,
    ``failed`` (to start) or ``cpu`` (its CPU seconds, as it ends)."""

    state: str
    detail: object = None


#: Makes a worker's ``Preparer`` (a module-level callable: it travels to the worker process).
PreparerFactory = Callable[..., Preparer]


def _worker_main(
    config: Config, conn: Connection, observe_stages: bool, make: PreparerFactory
) -> None:
    """A worker process: build the pipeline, then prepare each job received until the pipe
    closes (or ``None`` comes)."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    configure_logging(config.logging.level, config.logging.format)
    try:
        preparer = make(config, observe_stages=observe_stages)
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(_Status("failed", f"{type(exc).__name__}: {exc}"))
        return
    try:
        conn.send(_Status(_READY))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return  # the daemon is gone
            if message is None:
                usage = resource.getrusage(resource.RUSAGE_SELF)
                with contextlib.suppress(OSError):
                    conn.send(_Status("cpu", usage.ru_utime + usage.ru_stime))
                return
            if isinstance(message, _Reload):
                preparer.reload_partners()
                continue
            result = preparer.prepare(message)
            try:
                conn.send(result)
            except OSError:
                return
    finally:
        preparer.close()


@dataclass(slots=True)
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    job: Job | None = None
    future: Future[WorkerResult] | None = None
    deadline: float = math.inf
    reload: bool = False


class WorkerPool:
    """``size`` worker processes and the dispatcher thread that feeds them (see the module)."""

    def __init__(
        self,
        config: Config,
        *,
        size: int,
        budget: float,
        observe_stages: bool = False,
        make: PreparerFactory = Preparer,
    ) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.config = config
        self.size = size
        self.budget = budget
        self._observe_stages = observe_stages
        self._make = make
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["gateway.intake.preparing"])
        self._lock = threading.Lock()
        self._queue: deque[tuple[Job, Future[WorkerResult]]] = deque()
        self._closing = False
        self._kill = False
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._workers: list[_Worker] = []
        self._restart_at: list[float] = []
        #: Messages whose worker died under them, by source_ref: tried once more.
        self._died_under: dict[str, int] = {}
        self._cpu_seconds = 0.0
        #: CPU seconds of the dispatcher thread, once it has ended.
        self.dispatcher_cpu_seconds = 0.0
        for _ in range(size):
            self._workers.append(self._start())
        self._thread = threading.Thread(target=self._run, name="intake-workers", daemon=True)
        self._thread.start()
        # Before multiprocessing's own exit handler, which would wait for workers that ignore
        # SIGTERM and still hold their pipe open: a daemon leaving without close() kills them.
        atexit.register(self._at_exit)

    # --- from any thread ------------------------------------------------------------------------

    def submit(self, job: Job) -> Future[WorkerResult]:
        future: Future[WorkerResult] = Future()
        with self._lock:
            if self._closing:
                future.set_result(Broken(BrokenKind.STORAGE, "the daemon is stopping"))
                return future
            self._queue.append((job, future))
        self._wake()
        return future

    def reload_partners(self) -> None:
        with self._lock:
            for worker in self._workers:
                worker.reload = True
        self._wake()

    def close(self, *, wait: bool = True) -> None:
        atexit.unregister(self._at_exit)
        with self._lock:
            self._closing = True
            self._kill = not wait
        self._wake()
        self._thread.join(timeout=None if wait else CLOSE_SECONDS)
        self._wake_read.close()
        self._wake_write.close()

    def _at_exit(self) -> None:
        self.close(wait=False)

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) of the workers that have ended."""
        return self._cpu_seconds

    def alive(self) -> bool:
        """The dispatcher runs (the watchdog asks)."""
        return self._thread.is_alive()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")

    # --- in the dispatcher thread ---------------------------------------------------------------

    def _start(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(self.config, theirs, self._observe_stages, self._make),
            name="gateway-worker",
            daemon=True,
        )
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except Exception:
            log.exception("worker_dispatcher_failed")
            raise
        finally:
            self._stop_workers()
            self.dispatcher_cpu_seconds = time.thread_time()

    def _step(self) -> bool:
        """One round: wait for a result, a wake-up or a deadline; act. False: stop."""
        with self._lock:
            closing, kill = self._closing, self._kill
        busy = [w for w in self._workers if w.job is not None]
        if kill or (closing and not busy):
            return False
        now = time.monotonic()
        deadlines = [w.deadline for w in busy] + self._restart_at
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        ready = wait([w.conn for w in self._workers] + [self._wake_read], timeout)
        for handle in ready:
            if handle is self._wake_read:
                with contextlib.suppress(BlockingIOError):
                    self._wake_read.recv(4096)
                continue
            worker = next(w for w in self._workers if w.conn is handle)
            self._receive(worker)
        self._enforce_budget()
        self._restart_due()
        self._assign()
        return True

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker, BrokenKind.WORKER_DIED, self._ended(worker))
            return
        if isinstance(message, _Status):
            state, detail = message.state, message.detail
            if state == _READY:
                worker.ready = True
            else:
                log.error("worker_not_started", reason=detail, retry_in=RESTART_BACKOFF_SECONDS)
                self._lost(worker, BrokenKind.WORKER_DIED, f"a worker could not start: {detail}")
            return
        future, job = worker.future, worker.job
        worker.job, worker.future, worker.deadline = None, None, math.inf
        if job is not None:
            self._died_under.pop(job.source_ref, None)
        if future is not None:
            future.set_result(message)

    def _ended(self, worker: _Worker) -> str:
        worker.process.join(timeout=1.0)
        code = worker.process.exitcode
        if code is not None and code < 0:
            return f"the worker process was ended by signal {signal.Signals(-code).name}"
        return f"the worker process exited (code {code})"

    def _enforce_budget(self) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.job is not None and worker.deadline <= now:
                log.error(
                    "message_over_budget",
                    source_ref=worker.job.source_ref,
                    budget_seconds=self.budget,
                )
                self._cpu_seconds += _cpu_seconds(worker.process.pid)
                worker.process.kill()
                worker.process.join(timeout=CLOSE_SECONDS)
                self._lost(
                    worker,
                    BrokenKind.OVER_BUDGET,
                    f"processing took longer than its budget of {self.budget:g} s",
                )

    def _lost(self, worker: _Worker, kind: BrokenKind, detail: str) -> None:
        """``worker`` is gone: replace it; its message is tried again once if the worker died
        under it, else reported broken."""
        with contextlib.suppress(OSError):
            worker.conn.close()
        self._workers.remove(worker)
        job, future = worker.job, worker.future
        if job is not None and future is not None:
            tries = self._died_under.get(job.source_ref, 0) + 1
            if kind is BrokenKind.WORKER_DIED and tries < 2:
                log.warning("worker_died_retrying", source_ref=job.source_ref, reason=detail)
                self._died_under[job.source_ref] = tries
                self._queue.appendleft((job, future))
            else:
                self._died_under.pop(job.source_ref, None)
                future.set_result(Broken(kind, detail))
        if worker.ready or job is not None:
            self._workers.append(self._start())
        else:  # it never started: do not spin
            self._restart_at.append(time.monotonic() + RESTART_BACKOFF_SECONDS)

    def _restart_due(self) -> None:
        now = time.monotonic()
        due = [t for t in self._restart_at if t <= now]
        if due:
            self._restart_at = [t for t in self._restart_at if t > now]
            for _ in due:
                self._workers.append(self._start())

    def _assign(self) -> None:
        for worker in self._workers:
            if not worker.ready or worker.job is not None:
                continue
            with self._lock:
                if not self._queue:
                    return
                job, future = self._queue.popleft()
                reload, worker.reload = worker.reload, False
            # A job given back after its worker died is running already.
            if not future.running() and not future.set_running_or_notify_cancel():
                continue
            try:
                if reload:
                    worker.conn.send(_Reload())
                worker.conn.send(job)
            except OSError:
                worker.job, worker.future = job, future
                self._lost(worker, BrokenKind.WORKER_DIED, self._ended(worker))
                return
            worker.job, worker.future = job, future
            worker.deadline = time.monotonic() + self.budget

    def _stop_workers(self) -> None:
        """Close every worker (kill those still busy when killing), then fail what is left."""
        for worker in self._workers:
            if self._kill and worker.process.is_alive():
                self._cpu_seconds += _cpu_seconds(worker.process.pid)
                worker.process.kill()
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in self._workers:
            if not self._kill:
                self._cpu_seconds += _last_words(worker.conn)
            worker.process.join(timeout=CLOSE_SECONDS)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=CLOSE_SECONDS)
            with contextlib.suppress(OSError):
                worker.conn.close()
            if worker.future is not None and not worker.future.done():
                worker.future.set_result(Broken(BrokenKind.STORAGE, "the daemon stopped"))
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
        for _, future in left:
            if not future.done():
                future.set_result(Broken(BrokenKind.STORAGE, "the daemon stopped"))


def _last_words(conn: Connection) -> float:
    """The CPU seconds a closing worker reports as it ends (0 if it says nothing in time)."""
    try:
        while conn.poll(CLOSE_SECONDS):
            message = conn.recv()
            if isinstance(message, _Status) and message.state == "cpu":
                return float(str(message.detail))
    except (EOFError, OSError):
        pass
    return 0.0


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
