"""Rebehandling from the console: a preview of what the current rules would change
(``gateway rules replay``), then, on request, the same replay applied as the logged-in user.

Both run as jobs with progress. Applying re-runs the selection rather than trusting the preview:
the result is exactly what ``gateway rules replay --apply`` would record now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.casework.lookup import CaseworkError
from gateway.casework.replay import ReplayReport
from gateway.clock import bound, parse_moment
from gateway.users.roles import Permission
from gateway.web.context import NotFound, call, checked_form, client, ctx, login, redirect, render
from gateway.web.jobs import Job


def _parse(form: dict[str, str]) -> dict[str, Any]:
    by_received = form.get("datofelt") == "mottatt"
    try:
        since = bound(parse_moment(form.get("fra", "")), aware=by_received)
        until_text = form.get("til", "")
        until = (
            bound(parse_moment(until_text), aware=by_received, end=True) if until_text else None
        )
    except (ValueError, OverflowError) as exc:  # OverflowError: the day after 9999-12-31
        raise CaseworkError("Skriv datoene som ÅÅÅÅ-MM-DD (eller ÅÅÅÅ-MM-DDTTT:MM).") from exc
    return {"since": since, "until": until, "by_received": by_received, "form": form}


async def replay_form(request: Request) -> Response:
    session = await login(request, Permission.CASEWORK_WRITE)
    return render(request, "replay_form.html", session, section="rebehandling", form={})


def _start(request: Request, user: str, params: dict[str, Any], *, apply: bool) -> Job:
    data = ctx(request).data

    def work(job: Job) -> ReplayReport:
        job.note("rebehandler" if apply else "beregner forhåndsvisning")
        return data.replay(
            since=params["since"], until=params["until"], by_received=params["by_received"],
            apply=apply, by=user, progress=job.progress,
        )

    title = "Rebehandling lagres" if apply else "Rebehandling: forhåndsvisning"
    return ctx(request).jobs.start(user, "replay", title, work, apply=apply, **params)


async def replay_start(request: Request) -> Response:
    session = await login(request, Permission.CASEWORK_WRITE)
    form = {k: str(v)[:40] for k, v in (await checked_form(request, session)).items()}
    try:
        params = _parse(form)
    except CaseworkError as exc:
        return render(request, "replay_form.html", session, section="rebehandling", form=form,
                      problem=str(exc), status_code=400)
    job = _start(request, session.user.username, params, apply=False)
    await call(ctx(request).data.accounts.audit, session.user.username, "replay_preview",
               client=client(request), detail=_describe(params))
    return redirect(request, f"/jobber/{job.id}")


async def replay_result(request: Request) -> Response:
    session = await login(request, Permission.CASEWORK_WRITE)
    job = ctx(request).jobs.get(request.path_params["job_id"], session.user.username)
    if job is None or job.kind != "replay" or job.running or job.error:
        raise NotFound("Fant ikke resultatet (jobber glemmes når tjenesten startes på nytt).")
    return render(request, "replay_result.html", session, section="rebehandling", job=job,
                  report=job.result, applied=job.params["apply"])


async def replay_apply(request: Request) -> Response:
    session = await login(request, Permission.CASEWORK_WRITE)
    await checked_form(request, session)
    preview = ctx(request).jobs.get(request.path_params["job_id"], session.user.username)
    if preview is None or preview.kind != "replay" or preview.running or preview.params["apply"]:
        raise NotFound("Fant ikke forhåndsvisningen; start rebehandlingen på nytt.")
    params = {k: preview.params[k] for k in ("since", "until", "by_received", "form")}
    job = _start(request, session.user.username, params, apply=True)
    await call(ctx(request).data.accounts.audit, session.user.username, "replay_apply",
               client=client(request), detail=_describe(params))
    return redirect(request, f"/jobber/{job.id}")


def _describe(params: dict[str, Any]) -> str:
    until: datetime | None = params["until"]
    field = "mottatt" if params["by_received"] else "DatoTid"
    return f"{field} fra {params['since'].isoformat()}" + (
        f" til {until.isoformat()}" if until else ""
    )


ROUTES = [
    Route("/rebehandling", replay_form, methods=["GET"]),
    Route("/rebehandling", replay_start, methods=["POST"]),
    Route("/rebehandling/resultat/{job_id}", replay_result, methods=["GET"]),
    Route("/rebehandling/resultat/{job_id}/lagre", replay_apply, methods=["POST"]),
]
