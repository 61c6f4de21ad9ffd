"""``gateway web --config FILE``: serve the console and the status API with uvicorn.

On 127.0.0.1:8480 by default, for a TLS reverse proxy in front (docs/web.md). With
``web.tls_cert_file``/``tls_key_file`` it serves TLS itself; with ``web.api.client_ca_file`` it
also asks for client certificates (mutual TLS), verifies them against that CA and hands the
certificate to the application as the ASGI TLS extension (``scope["extensions"]["tls"]``), which
uvicorn does not do by itself yet.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import Server

from gateway.adapters import Adapters, load_config
from gateway.logs import configure_logging, get_logger
from gateway.users.accounts import Policy
from gateway.web.app import create_app
from gateway.web.config import WebConfig
from gateway.web.data import ConsoleData

log = get_logger("web")


def _with_client_certificate(app: Any, pem: str) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = dict(scope)
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = {"client_cert_chain": [pem], "server_cert": None,
                                 "client_cert_error": None}
            scope["extensions"] = extensions
        await app(scope, receive, send)

    return wrapped


class ClientCertificateH11(H11Protocol):
    """uvicorn's h11 protocol, passing the verified client certificate of each connection to
    the application (the ASGI TLS extension's ``client_cert_chain``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der:
            self.app = _with_client_certificate(self.app, ssl.DER_cert_to_PEM_cert(der))


def policy_of(web: WebConfig) -> Policy:
    from datetime import timedelta

    return Policy(
        idle=timedelta(minutes=web.session_idle_minutes),
        max_age=timedelta(hours=web.session_max_hours),
        max_failures=web.login_max_failures,
        max_client_failures=4 * web.login_max_failures,
        window=timedelta(minutes=web.login_window_minutes),
    )


def uvicorn_config(app: Any, web: WebConfig, *, port: int | None = None) -> uvicorn.Config:
    """The uvicorn settings for ``web`` (``port`` overrides, for tests)."""
    kwargs: dict[str, Any] = {}
    if web.tls_cert_file is not None:
        kwargs.update(ssl_certfile=str(web.tls_cert_file), ssl_keyfile=str(web.tls_key_file))
        if web.api.client_ca_file is not None:
            # Optional: console users have no certificate; the API requires one (or a token).
            kwargs.update(ssl_ca_certs=str(web.api.client_ca_file),
                          ssl_cert_reqs=ssl.CERT_OPTIONAL, http=ClientCertificateH11)
    return uvicorn.Config(
        app,
        host=web.host,
        port=web.port if port is None else port,
        proxy_headers=bool(web.forwarded_allow_ips),
        forwarded_allow_ips=list(web.forwarded_allow_ips) or None,
        root_path=web.root_path,
        server_header=False,
        date_header=True,
        lifespan="on",
        log_config=None,
        access_log=False,
        **kwargs,
    )


def serve(config_path: Path) -> int:
    config = load_config(config_path)
    adapters = Adapters.of(config)
    web = adapters.web
    configure_logging(config.logging.level, config.logging.format)
    data = ConsoleData.open(config, policy_of(web))
    try:
        app = create_app(config, data, adapters=adapters)
        log.info("web_starting", host=web.host, port=web.port, tls=web.tls_cert_file is not None)
        Server(uvicorn_config(app, web)).run()
    finally:
        data.close()
    return 0
