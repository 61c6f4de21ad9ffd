"""``gateway run``: run every service until stopped, reload on SIGHUP, drain on SIGTERM.

What runs is built from the configuration by ``gateway.wiring``: the inboxes (the spool, the
IMAP mailboxes) hand each message to the intake (``gateway.intake``: the pipeline in one worker
thread, committed before the inbox removes the message), the outbox delivers the replies, and
the ack tracker, the payout scheduler, the metrics endpoint and the systemd watchdog run beside
them. Every one is a ``gateway.transports.Service``: it runs until the stop event is set.

On start, replies still pending are delivered, and files left in the spool's ``work/`` are
recovered: one whose intake is already committed is just finished (so it is never answered
twice), the others are processed again (so none is lost).

SIGTERM/SIGINT set the stop event: intake stops, the message in hand is finished within
``daemon.drain_seconds``; a file still in ``work/`` after that is recovered on the next start.
SIGHUP reads the partners' CPAs again.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import time
from pathlib import Path

from gateway.config import Config
from gateway.logs import get_logger
from gateway.pipeline import Pipeline
from gateway.service import systemd
from gateway.wiring import build

log = get_logger("daemon")


class Daemon:
    """Runs the services of one ``gateway run`` (``once``: until the spool is empty)."""

    def __init__(self, config: Config, *, once: bool = False) -> None:
        self.config = config
        self.once = once
        self.parts = build(config, once=once)
        self.stopping = asyncio.Event()

    @property
    def pipeline(self) -> Pipeline:
        return self.parts.pipeline

    def reload_partners(self) -> None:
        """SIGHUP: read the CPA directory again; a broken file keeps the registry in force."""
        partners = self.pipeline.partners
        if partners is None:
            log.info("reload_no_partners_configured")
            return
        registry, problems = partners.reloaded()
        for problem in problems:
            log.error("cpa_not_loaded", file=str(problem.path), reason=problem.reason)
        if problems:
            log.error("partners_kept", reason="a CPA file is broken; fix it and reload again")
            return
        # The outbox's routing reads the registry from the pipeline: both change at once.
        self.pipeline.partners = registry
        log.info("partners_reloaded", cpas=len(registry))

    def close(self, *, wait: bool = True) -> None:
        """Stop the workers and (with ``wait``) release the databases; log what this process
        and its workers used: CPU seconds (the writer thread's among the daemon's), the batches
        written, and the bytes written to storage."""
        self.parts.close(wait=wait)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        intake = self.parts.intake
        log.info(
            "resources_used",
            daemon_seconds=round(usage.ru_utime + usage.ru_stime, 3),
            writer_seconds=round(intake.writer.cpu_seconds, 3),
            batches=intake.writer.batches,
            batched=intake.writer.written,
            workers_seconds=round(intake.workers.cpu_seconds, 3),
            bytes_written=_bytes_written(),
        )

    async def run(self) -> int:
        """Run every service until stopped (with ``once``: until the spool is empty).

        A service that raises stops the daemon; its error is the daemon's (a
        ``ConfigurationError``, such as a metrics port in use, exits with code 78)."""
        parts = self.parts
        partners = self.pipeline.partners
        log.info(
            "started",
            spool=str(self.config.spool.incoming),
            outbox=str(self.config.outbox.directory),
            database=self.config.database.describe(),
            services=[service.name for service in parts.services],
            partners=len(partners) if partners is not None else None,
        )
        systemd.ready("taking claims")
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(service.run(self.stopping), name=service.name)
                    for service in parts.services
                ]
                if self.once:
                    await tasks[parts.services.index(parts.spool)]
                    self.stopping.set()
        except BaseExceptionGroup as failed:
            raise _first(failed) from failed
        stats = parts.intake.stats
        log.info(
            "stopped",
            handled=stats.handled,
            outcomes=stats.outcomes,
            seconds=round(time.monotonic() - stats.started, 1),
        )
        return 0


def _bytes_written() -> int | None:
    """Bytes this process caused to be written to storage (Linux ``/proc/self/io``)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


async def run_daemon(config: Config, *, once: bool = False) -> int:
    """Run until SIGTERM/SIGINT (or until the spool is empty with ``once``)."""
    daemon = Daemon(config, once=once)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_stop, daemon, sig)
    loop.add_signal_handler(signal.SIGHUP, _reload, daemon)
    drained = True
    try:
        work = asyncio.create_task(daemon.run())
        stop = asyncio.create_task(daemon.stopping.wait())
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if work.done():
            return work.result()
        try:
            # Stop requested: the message in hand may finish, for a bounded time.
            return await asyncio.wait_for(work, timeout=config.drain_seconds)
        except TimeoutError:
            drained = False
            log.error("drain_timeout", seconds=config.drain_seconds)
            return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        daemon.close(wait=drained)


def _request_stop(daemon: Daemon, sig: signal.Signals) -> None:
    if not daemon.stopping.is_set():
        log.info("stop_requested", signal=sig.name)
        systemd.stopping("draining")
    daemon.stopping.set()


def _reload(daemon: Daemon) -> None:
    systemd.reloading()
    try:
        daemon.reload_partners()
    except Exception:
        log.exception("reload_failed")
    systemd.ready("taking claims")
