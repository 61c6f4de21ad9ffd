"""What every console page shares: the application's context, templates, the logged-in user,
permission checks and CSRF.

A page calls ``await login(request, Permission.X)`` first: without a live session it answers
with a redirect to the login page, without the permission with 403. Every POST form carries the
session's CSRF token (``csrf`` field), checked by ``await checked_form(request, session)``.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, urlsplit

import anyio.to_thread
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway.adapters import Adapters
from gateway.config import Config
from gateway.users.accounts import Session
from gateway.users.roles import Permission
from gateway.web import formatting
from gateway.web.config import WebConfig
from gateway.web.data import ConsoleData
from gateway.web.jobs import JobRunner
from gateway.web.oidc.flow import OidcLogin
from gateway.web.probes import MailboxProbe

SESSION_COOKIE = "gateway_session"
LOGIN_COOKIE = "gateway_login"
#: Largest form body a console page accepts (a reason text, a few ids).
MAX_FORM_BYTES = 64 * 1024

P = ParamSpec("P")
T = TypeVar("T")


class LoginRequired(Exception):
    """No live session: go to the login page, and come back to ``next_path`` after."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """Logged in, but the role does not allow this page or action (or a bad CSRF token)."""

    def __init__(self, text: str = "Du har ikke tilgang til denne siden.") -> None:
        super().__init__(text)
        self.text = text


class NotFound(Exception):
    """Nothing here (or nothing this user may know exists)."""

    def __init__(self, text: str = "Fant ikke siden.") -> None:
        super().__init__(text)
        self.text = text


@dataclass(slots=True)
class WebContext:
    """Built once per server; pages reach it as ``request.app.state.ctx``."""

    config: Config
    #: The adapters' settings read from ``config``: ``[web]``, ``[payout]``, the mailboxes.
    adapters: Adapters
    data: ConsoleData
    jobs: JobRunner
    templates: Environment
    started: datetime
    #: The IMAP mailboxes' depths for the operations page.
    mailbox_probe: MailboxProbe
    #: Login with OpenID Connect (``[web.oidc]``), or None: local accounts only.
    oidc: OidcLogin | None = None

    @property
    def web(self) -> WebConfig:
        return self.adapters.web


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("gateway.web", "templates"),
        autoescape=select_autoescape(("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    formatting.install(env)
    return env


def ctx(request: Request) -> WebContext:
    context: WebContext = request.app.state.ctx
    return context


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking work (the database, files, CPU) in a worker thread."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def client(request: Request) -> str:
    """The client's address (the proxy's view of it behind ``forwarded_allow_ips``)."""
    return request.client.host if request.client else "-"


async def current_session(request: Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    return await call(ctx(request).data.accounts.session, token)


async def login(request: Request, permission: Permission | None = None) -> Session:
    """The live session of the request, with ``permission``; else redirect or 403."""
    session = await current_session(request)
    if session is None:
        raise LoginRequired(request.url.path)
    if permission is not None and not session.user.can(permission):
        raise Forbidden()
    return session


def _same_origin(request: Request) -> bool:
    """A browser's Origin (or Referer) names this host, or no such header is sent."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def checked_form(request: Request, session: Session) -> FormData:
    """The POSTed form, after its CSRF token and origin are checked."""
    form = await read_form(request)
    token = str(form.get("csrf", ""))
    if not _same_origin(request) or not hmac.compare_digest(
        token.encode(), session.csrf_token.encode()
    ):
        raise Forbidden("Skjemaet er utløpt eller ugyldig. Last siden på nytt og prøv igjen.")
    return form


async def read_form(request: Request) -> FormData:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        raise Forbidden("Skjemaet er for stort.")
    return await request.form(max_files=0, max_fields=200)


def render(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A page from ``templates/``: the user, their permissions and the CSRF token included."""
    context = ctx(request)
    page = context.templates.get_template(template).render(
        request=request,
        session=session,
        user=session.user if session else None,
        can=(lambda p: session is not None and session.user.can(Permission(p))),
        csrf=session.csrf_token if session else "",
        root=context.web.root_path,
        **values,
    )
    return HTMLResponse(page, status_code=status_code)


def redirect(request: Request, path: str, **query: str) -> Response:
    """303 to a path of this console (POST/redirect/GET)."""
    target = ctx(request).web.root_path + path
    if query:
        target += "?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())
    return Response(status_code=303, headers={"location": target})
