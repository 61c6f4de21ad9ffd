"""Talking to systemd: ``sd_notify`` and the service watchdog, without a library.

systemd starts a ``Type=notify`` service with ``$NOTIFY_SOCKET`` naming an ``AF_UNIX`` datagram
socket (a path, or ``@name`` in the abstract namespace). The service sends newline-separated
``KEY=VALUE`` assignments there:

- ``READY=1`` when start-up is done (``systemctl start`` returns only then);
- ``STOPPING=1`` when a stop has begun (drain in progress);
- ``RELOADING=1`` then ``READY=1`` around a reload (``SIGHUP``);
- ``STATUS=...`` a one-line status shown by ``systemctl status``;
- ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC`` microseconds, or systemd kills and restarts
  the service (``WatchdogSec=`` in the unit).

Outside systemd (no ``$NOTIFY_SOCKET``) every function is a no-op that returns ``False``, so the
daemon calls them unconditionally.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable

from gateway.logs import get_logger

log = get_logger("systemd")


def _address() -> str | None:
    """The notify socket address from the environment, or None outside systemd."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if path.startswith("@"):
        # Abstract namespace: the leading '@' stands for a NUL byte.
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    return None  # unset, or a kind we do not speak (vsock:...)


def notify(state: str) -> bool:
    """Send ``state`` (``KEY=VALUE`` lines) to systemd. True if sent, False outside systemd.

    Never raises: a notification that cannot be sent is logged, because failing to tell systemd
    something must not stop the daemon (systemd's own timeouts deal with a silent service).
    """
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("sd_notify_failed", state=state.split("=", 1)[0], error=str(exc))
        return False
    return True


def _one_line(text: str) -> str:
    # A newline would start a new assignment: a status text must not be able to send READY=1.
    return " ".join(text.split())


def ready(status: str | None = None) -> bool:
    """Start-up is complete (``READY=1``), with an optional status line."""
    state = "READY=1"
    if status:
        state += f"\nSTATUS={_one_line(status)}"
    return notify(state)


def stopping(status: str | None = None) -> bool:
    """A stop has begun (``STOPPING=1``): intake is closed, in-flight work is draining."""
    state = "STOPPING=1"
    if status:
        state += f"\nSTATUS={_one_line(status)}"
    return notify(state)


def reloading() -> bool:
    """A reload has begun (``RELOADING=1``); send ``ready()`` when it is done.

    ``MONOTONIC_USEC`` is included because ``Type=notify-reload`` (systemd 253+) requires it;
    older systemd ignores it.
    """
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")


def status(text: str) -> bool:
    """Set the one-line status ``systemctl status`` shows."""
    return notify(f"STATUS={_one_line(text)}")


def watchdog_ping() -> bool:
    """Tell systemd the service is alive (``WATCHDOG=1``)."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """The watchdog timeout in seconds, or None if the watchdog is off for this process.

    systemd sets ``WATCHDOG_USEC``, and ``WATCHDOG_PID`` to the process it expects pings from:
    if that is another process (an environment inherited by a child), the watchdog is not ours.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    try:
        microseconds = int(usec)
    except ValueError:
        return None
    if microseconds <= 0:
        return None
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return microseconds / 1_000_000


async def watchdog_loop(
    stop: asyncio.Event,
    healthy: Callable[[], bool],
    *,
    interval: float | None = None,
) -> None:
    """Ping the watchdog every half interval while ``healthy()`` says so, until ``stop`` is set.

    The pings come from the event loop itself, so a loop that hangs (a blocking call, a
    deadlock) stops pinging and systemd restarts the service. ``healthy`` lets the daemon
    withhold pings when the loop runs but the work does not (e.g. the pipeline worker has been
    stuck on one message far longer than any message takes); it must be quick and must not
    block. An exception from it counts as unhealthy. ``interval`` overrides
    ``watchdog_interval()`` (tests); with neither, this returns at once.
    """
    timeout = interval if interval is not None else watchdog_interval()
    if timeout is None:
        return
    period = timeout / 2
    was_healthy = True
    while not stop.is_set():
        try:
            is_healthy = bool(healthy())
        except Exception as exc:
            log.exception("watchdog_health_check_failed", error=type(exc).__name__)
            is_healthy = False
        if is_healthy:
            watchdog_ping()
            if not was_healthy:
                log.info("watchdog_resumed")
        elif was_healthy:
            log.error("watchdog_withheld", hint="systemd restarts the service if this lasts")
        was_healthy = is_healthy
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=period)


class Watchdog:
    """The watchdog pings as a service (see ``watchdog_loop``)."""

    name = "watchdog"

    def __init__(self, healthy: Callable[[], bool]) -> None:
        self.healthy = healthy

    async def run(self, stop: asyncio.Event) -> None:
        """Ping while ``healthy()`` until ``stop`` is set (returns at once outside systemd)."""
        await watchdog_loop(stop, self.healthy)


__all__ = [
    "Watchdog",
    "notify",
    "ready",
    "reloading",
    "status",
    "stopping",
    "watchdog_interval",
    "watchdog_loop",
    "watchdog_ping",
]
