"""The payout page: recorded runs, the last and the next run, and a preview of what the next run
would pay (``gateway payout preview``: the ledger's plan, per payee, holds shown with reasons).
Read only: runs are started by the daemon's schedule or ``gateway payout run``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.clock import utc_now
from gateway.payout import ledger
from gateway.payout.config import PayoutConfig
from gateway.payout.payees import PayeePlan, plan_payees
from gateway.payout.recipients import Recipients
from gateway.practices.loading import load_register
from gateway.store.engine import Engine
from gateway.users.roles import Permission
from gateway.web.context import call, ctx, login, render
from gateway.web.data import ConsoleData


@dataclass(frozen=True, slots=True)
class PayoutOverview:
    enabled: bool
    cron: str
    timezone: str
    runs: tuple[ledger.RunRecord, ...]
    next_run: datetime | None

    @property
    def last(self) -> ledger.RunRecord | None:
        return self.runs[-1] if self.runs else None


def _overview(payout: PayoutConfig, database: Engine) -> PayoutOverview:
    upcoming = None
    if payout.enabled:
        upcoming = payout.trigger().get_next_fire_time(None, utc_now())
    return PayoutOverview(
        enabled=payout.enabled,
        cron=payout.cron,
        timezone=payout.timezone,
        runs=tuple(ledger.runs(database)),
        next_run=upcoming,
    )


def payout_overview(request: Request) -> PayoutOverview:
    """Runs and the schedule (blocking: call it in a worker thread)."""
    context = ctx(request)
    return _overview(context.adapters.payout, context.data.database)


def _preview(data: ConsoleData) -> list[PayeePlan]:
    """Payees as the practice register in force names them (``gateway.payout.recipients``)."""
    registry = Recipients(load_register(data.store.practices))
    return plan_payees(ledger.plan(data.database), registry)


async def payout_page(request: Request) -> Response:
    session = await login(request, Permission.PAYOUT_READ)
    context = ctx(request)
    overview = await call(_overview, context.adapters.payout, context.data.database)
    plans = await call(_preview, context.data)
    paid = [p for p in plans if not p.held]
    return render(
        request, "payout.html", session, section="utbetaling", overview=overview,
        runs=list(reversed(overview.runs))[:50], plans=plans,
        total_ore=sum(p.total_ore for p in paid), paid=len(paid),
        held=len(plans) - len(paid),
    )


ROUTES = [Route("/drift/utbetaling", payout_page, methods=["GET"])]
