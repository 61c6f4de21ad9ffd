"""The progress page of a long job: refreshes itself each second (no script needed) until the
job is done, then sends the user on to its result."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.web.context import NotFound, ctx, login, redirect, render

#: Where each kind of job shows its result.
RESULT_PATHS = {
    "replay": "/rebehandling/resultat/{id}",
    "stats": "/statistikk/resultat/{id}",
}


async def job_page(request: Request) -> Response:
    session = await login(request)
    job = ctx(request).jobs.get(request.path_params["job_id"], session.user.username)
    if job is None:
        raise NotFound(
            "Fant ingen jobb med denne lenken (jobber glemmes når tjenesten startes på nytt)."
        )
    if not job.running and job.error is None:
        return redirect(request, RESULT_PATHS[job.kind].format(id=job.id))
    return render(request, "job.html", session, job=job, refresh=job.running)


ROUTES = [Route("/jobber/{job_id}", job_page, methods=["GET"])]
