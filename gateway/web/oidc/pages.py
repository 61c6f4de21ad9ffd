"""``/oidc/logg-inn``: off to the provider; ``/oidc/tilbake``: back from it, logged in.

The flow cookie holds the pending login's state. It is ``SameSite=Lax``, not ``Strict`` like
the session cookie: the browser comes back from the provider's site, and a strict cookie is not
sent on a navigation another site started. For the same reason the answer to the callback is a
page that moves on by itself (meta refresh) rather than a redirect: the session cookie it sets
is sent on the next request only once that request starts on this console's own page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.logs import get_logger
from gateway.users.accounts import LoginFailed, LoginThrottled
from gateway.web.auth_pages import login_page, safe_next
from gateway.web.context import (
    SESSION_COOKIE,
    NotFound,
    call,
    client,
    ctx,
    render,
)
from gateway.web.oidc.flow import LoginRefused, OidcLogin, unavailable
from gateway.web.oidc.provider import ProviderError

log = get_logger("web.oidc")

FLOW_COOKIE = "gateway_oidc"


def _oidc(request: Request) -> OidcLogin:
    found = ctx(request).oidc
    if found is None:
        raise NotFound()
    return found


def _flow_path(request: Request) -> str:
    return (ctx(request).web.root_path or "") + "/oidc"


async def start(request: Request) -> Response:
    """Remember a new pending login and send the browser to the provider."""
    oidc = _oidc(request)
    accounts = ctx(request).data.accounts
    try:
        await call(accounts.check_external_throttle, client(request))
    except LoginThrottled as exc:
        return await login_page(request, problem=str(exc), status=429)
    next_path = safe_next(request.query_params.get("neste", "/"))
    try:
        pending, url = await call(oidc.begin, next_path)
    except ProviderError as exc:
        refused = unavailable(exc)
        log.warning("oidc_unavailable", reason=refused.reason)
        return await login_page(request, problem=refused.text, status=refused.status)
    response = Response(status_code=303, headers={"location": url})
    response.set_cookie(
        FLOW_COOKIE,
        pending.state,
        max_age=600,
        path=_flow_path(request),
        httponly=True,
        samesite="lax",
        secure=ctx(request).web.cookie_secure,
    )
    return response


async def back(request: Request) -> Response:
    """The provider's answer: check it, start a session, move on to where the user was going."""
    oidc = _oidc(request)
    context = ctx(request)
    accounts = context.data.accounts
    q = request.query_params
    username: str | None = None
    try:
        await call(accounts.check_external_throttle, client(request))
        pending = oidc.take(q.get("state", ""), request.cookies.get(FLOW_COOKIE, ""))
        if q.get("error") or not q.get("code"):
            # The user cancelled at the provider, or the provider refused (RFC 6749 4.1.2.1).
            error = q.get("error", "no code")[:64]
            raise LoginRefused(
                f"the provider answered error={error!r}",
                "Innloggingen ble avbrutt. Prøv igjen.",
                401,
            )
        identity = await call(oidc.finish, q["code"], pending)
        username = identity.username
        token, _ = await call(
            accounts.login_external,
            identity.username,
            identity.display_name,
            identity.roles,
            client(request),
        )
    except LoginThrottled as exc:
        return _forget_flow(request, await login_page(request, problem=str(exc), status=429))
    except LoginFailed as exc:  # disabled in the console: counted and audited already
        return _forget_flow(request, await login_page(request, problem=str(exc), status=403))
    except LoginRefused as exc:
        if exc.status == 503:  # the provider's trouble, not the user's: not counted
            log.warning("oidc_unavailable", reason=exc.reason)
        else:
            log.info("oidc_login_refused", reason=exc.reason, client=client(request))
            await call(
                accounts.external_failed, exc.username or username, client(request), exc.reason
            )
        return _forget_flow(request, await login_page(request, problem=exc.text, status=exc.status))
    root = context.web.root_path
    response = render(request, "oidc_done.html", None, target=root + pending.next_path)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=context.web.cookie_secure,
        path=root or "/",
    )
    return _forget_flow(request, response)


def _forget_flow(request: Request, response: Response) -> Response:
    response.delete_cookie(FLOW_COOKIE, path=_flow_path(request))
    return response


ROUTES = [
    Route("/oidc/logg-inn", start, methods=["GET"]),
    Route("/oidc/tilbake", back, methods=["GET"]),
]
