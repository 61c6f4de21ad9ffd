"""The audit log for the revisor role: who did what, when, from where; newest first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.users.roles import Permission
from gateway.web.context import call, ctx, login, render

PAGE_SIZE = 100


async def audit_page(request: Request) -> Response:
    session = await login(request, Permission.AUDIT_READ)
    before = request.query_params.get("for", "")
    actor = request.query_params.get("bruker", "")[:64] or None
    entries = await call(
        ctx(request).data.accounts.audit_entries,
        limit=PAGE_SIZE,
        before_id=int(before) if before.isdigit() and len(before) < 12 else None,
        actor=actor,
    )
    return render(request, "audit.html", session, section="revisjon", entries=entries,
                  actor=actor or "", more=len(entries) == PAGE_SIZE)


ROUTES = [Route("/revisjon", audit_page, methods=["GET"])]
