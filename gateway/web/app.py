"""The ASGI application: console pages, the claim status API, static files, error pages and
the security headers every answer carries.

``create_app`` takes the config and an open ``ConsoleData`` (the store); ``gateway.web.server``
serves it with uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.adapters import Adapters
from gateway.clock import utc_now
from gateway.config import Config
from gateway.web import (
    audit_pages,
    auth_pages,
    casework_pages,
    jobs_pages,
    operations_pages,
    payout_pages,
    replay_pages,
    stats_pages,
)
from gateway.web.api import routes as api_routes
from gateway.web.api.auth import SenderAuth
from gateway.web.context import (
    Forbidden,
    LoginRequired,
    NotFound,
    WebContext,
    ctx,
    current_session,
    redirect,
    render,
    templates,
)
from gateway.web.data import ConsoleData
from gateway.web.jobs import JobRunner
from gateway.web.oidc import pages as oidc_pages
from gateway.web.oidc.flow import OidcLogin
from gateway.web.probes import MailboxProbe

#: No script, no frames, nothing from elsewhere: the console needs none of it.
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the security headers, and ``Cache-Control: no-store`` to everything but static
    files (pages hold health data; a shared cache must never keep them)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _next_path(request: Request, path: str) -> str:
    root = ctx(request).web.root_path
    return path[len(root):] if root and path.startswith(root) else path


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return redirect(request, "/logg-inn", neste=_next_path(request, exc.next_path))


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    session = await current_session(request)
    return render(request, "error.html", session, status_code=403, heading="Ingen tilgang",
                  text=exc.text)


async def _not_found(request: Request, exc: Exception) -> Response:
    text = exc.text if isinstance(exc, NotFound) else "Fant ikke siden."
    if request.url.path.startswith(ctx(request).web.root_path + "/api/"):
        return JSONResponse({"feil": "ikke_funnet", "melding": text}, status_code=404)
    session = await current_session(request)
    return render(request, "error.html", session, status_code=404, heading="Fant ikke siden",
                  text=text)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return await _not_found(request, exc)
    if request.url.path.startswith(ctx(request).web.root_path + "/api/"):
        return JSONResponse({"feil": "http", "melding": str(exc.detail)},
                            status_code=exc.status_code, headers=exc.headers)
    return render(request, "error.html", None, status_code=exc.status_code,
                  heading="Feil", text=str(exc.detail))


def routes() -> list[BaseRoute]:
    static = StaticFiles(directory=str(resources.files("gateway.web").joinpath("static")))
    return [
        *auth_pages.ROUTES,
        *oidc_pages.ROUTES,
        *casework_pages.ROUTES,
        *replay_pages.ROUTES,
        *jobs_pages.ROUTES,
        *operations_pages.ROUTES,
        *payout_pages.ROUTES,
        *stats_pages.ROUTES,
        *audit_pages.ROUTES,
        Mount("/api/v1", routes=api_routes.ROUTES),
        Mount("/static", app=static, name="static"),
    ]


def create_app(
    config: Config,
    data: ConsoleData,
    *,
    adapters: Adapters | None = None,
    sender_auth: SenderAuth | None = None,
) -> Starlette:
    """The console and API on ``data`` (which the caller closes); ``adapters`` defaults to
    those ``config`` names."""
    adapters = adapters or Adapters.of(config)
    jobs = JobRunner()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with anyio.create_task_group() as group:
            jobs.attach(group)
            yield {}
            group.cancel_scope.cancel()

    app = Starlette(
        routes=routes(),
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            LoginRequired: _login_required,
            Forbidden: _forbidden,
            NotFound: _not_found,
            HTTPException: _http_error,
        },
        lifespan=lifespan,
    )
    app.state.ctx = WebContext(
        config=config,
        adapters=adapters,
        data=data,
        jobs=jobs,
        templates=templates(),
        started=utc_now(),
        mailbox_probe=MailboxProbe(adapters.mailboxes),
        oidc=OidcLogin(adapters.web.oidc) if adapters.web.oidc is not None else None,
    )
    app.state.sender_auth = sender_auth or SenderAuth.from_config(config, adapters.web.api)
    return app
