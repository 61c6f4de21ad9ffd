"""Logging in and out, and the start page (the first page the user's roles allow)."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.users.accounts import LoginFailed, LoginThrottled
from gateway.users.roles import Permission
from gateway.web.context import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    call,
    checked_form,
    client,
    ctx,
    current_session,
    login,
    read_form,
    redirect,
    render,
)

#: Where each kind of user starts, by the first permission they have.
_START = (
    (Permission.CASEWORK_READ, "/arbeidsliste"),
    (Permission.OPERATIONS_READ, "/drift"),
    (Permission.STATS, "/statistikk"),
)


def safe_next(path: str) -> str:
    """Only a path on this console (never another site) after login. Control characters are
    refused too: a browser drops a tab or line break, so "/<tab>/x" would become "//x"."""
    if (
        not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
        or not path.isprintable()
        or " " in path
    ):
        return "/"
    return path


async def home(request: Request) -> Response:
    session = await login(request)
    for permission, path in _START:
        if session.user.can(permission):
            return redirect(request, path)
    return render(request, "error.html", session, heading="Ingen tilgang",
                  text="Brukeren din har ingen roller med sider i konsollet.")


async def login_page(request: Request, *, problem: str | None = None, status: int = 200,
                     username: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    root = ctx(request).web.root_path
    next_path = safe_next(request.query_params.get("neste", "/"))
    response = render(
        request,
        "login.html",
        None,
        status_code=status,
        login_csrf=token,
        next_path=next_path,
        problem=problem,
        username=username,
        idle_minutes=int(ctx(request).web.session_idle_minutes),
        oidc_label=oidc.config.label if (oidc := ctx(request).oidc) is not None else None,
    )
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict",
        secure=ctx(request).web.cookie_secure, path=root or "/", max_age=3600,
    )
    return response


async def login_get(request: Request) -> Response:
    if await current_session(request) is not None:
        return redirect(request, "/")
    return await login_page(request)


async def login_post(request: Request) -> Response:
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    given = str(form.get("csrf", ""))
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return await login_page(
            request, problem="Skjemaet var utløpt. Prøv igjen.", status=400
        )
    username = str(form.get("brukernavn", ""))[:64]
    password = str(form.get("passord", ""))[:1024]
    context = ctx(request)
    try:
        token, _ = await call(context.data.accounts.login, username, password, client(request))
    except (LoginFailed, LoginThrottled) as exc:
        status = 429 if isinstance(exc, LoginThrottled) else 401
        return await login_page(request, problem=str(exc), status=status, username=username)
    response = redirect(request, safe_next(str(form.get("neste", "/"))))
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict",
        secure=context.web.cookie_secure, path=context.web.root_path or "/",
    )
    response.delete_cookie(LOGIN_COOKIE, path=context.web.root_path or "/")
    return response


async def logout(request: Request) -> Response:
    session = await login(request)
    await checked_form(request, session)
    await call(ctx(request).data.accounts.logout, session, client(request))
    response = redirect(request, "/logg-inn")
    response.delete_cookie(SESSION_COOKIE, path=ctx(request).web.root_path or "/")
    return response


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/logg-inn", login_get, methods=["GET"]),
    Route("/logg-inn", login_post, methods=["POST"]),
    Route("/logg-ut", logout, methods=["POST"]),
]
