"""The console and the claim status API as a service of ``gateway run`` (``[web] in_daemon =
true``): the same application as ``gateway web``, served by uvicorn on the daemon's event loop
from its start until it stops.

``gateway web`` as its own systemd unit stays the production way (docs/web.md): the console can
then be restarted, upgraded or left off without touching intake. In the daemon it shares the
process, not the database connection: it opens its own, as ``gateway web`` does.

The daemon owns the signals: uvicorn's own handlers are not installed, and the server is told
to exit when the daemon's stop event is set. A port that cannot be bound (or an application
that cannot start) raises ``ConfigurationError``, so the daemon stops with exit code 78 as for
a metrics port in use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from uvicorn.server import Server

from gateway.adapters import Adapters
from gateway.config import Config
from gateway.errors import ConfigurationError
from gateway.logs import get_logger
from gateway.web.app import create_app
from gateway.web.data import ConsoleData
from gateway.web.server import policy_of, uvicorn_config

log = get_logger("web")


class _DaemonServer(Server):
    """uvicorn's server without its signal handlers (the daemon's are in force)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebService:
    """``gateway.transports.Service``: serve the console until the daemon stops."""

    name = "web"

    def __init__(self, config: Config, adapters: Adapters) -> None:
        self.config = config
        self.adapters = adapters

    async def run(self, stop: asyncio.Event) -> None:
        web = self.adapters.web
        data = await asyncio.to_thread(ConsoleData.open, self.config, policy_of(web))
        server = _DaemonServer(
            uvicorn_config(create_app(self.config, data, adapters=self.adapters), web)
        )

        async def exit_on_stop() -> None:
            await stop.wait()
            server.should_exit = True

        watcher = asyncio.create_task(exit_on_stop(), name="web-stop")
        log.info("web_serving", host=web.host, port=web.port, in_daemon=True)
        try:
            await server.serve()
        except SystemExit:
            # uvicorn exits the process when it cannot bind or its application cannot start;
            # here that is the daemon's configuration error, not the end of the process.
            raise ConfigurationError(
                f"{self.config.path}: web.in_daemon: cannot serve the console on "
                f"{web.host}:{web.port} (is the port in use? see the log)"
            ) from None
        finally:
            watcher.cancel()
            await asyncio.to_thread(data.close)
        if not stop.is_set():
            raise ConfigurationError(f"{self.config.path}: the console stopped by itself")
