"""Statistics from the console: the anonymised export (``gateway stats export``) as a job with
progress, shown as a table and a chart, downloadable in every format. Person counts never leave
the table object (the formats do not write them); suppressed cells show as ``:``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.stats.build import build_table
from gateway.stats.formats import FORMATS, write_table
from gateway.stats.mirror import mirror_directory
from gateway.stats.model import AREA_LEVELS, DIMENSIONS, MEASURES, Table
from gateway.stats.periods import StatsError, parse_period
from gateway.users.accounts import Session
from gateway.users.roles import Permission
from gateway.web.context import (
    Forbidden,
    NotFound,
    call,
    checked_form,
    client,
    ctx,
    login,
    redirect,
    render,
)
from gateway.web.jobs import Job

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xml": "application/xml",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "png": "image/png",
}


def _choices(form: dict[str, list[str]]) -> tuple[str, tuple[str, ...], str]:
    measure = (form.get("maal") or [""])[0]
    by = tuple(d for d in DIMENSIONS if d in form.get("etter", []))
    period = (form.get("periode") or [""])[0].strip()
    if measure not in MEASURES:
        raise StatsError("Velg et mål.")
    if not by:
        raise StatsError("Velg minst én dimensjon.")
    if sum(d in AREA_LEVELS for d in by) > 1:
        raise StatsError(f"Velg bare ett geografisk nivå ({', '.join(AREA_LEVELS)}).")
    parse_period(period)
    return measure, by, period


def _form_page(request: Request, session: Session, *, status_code: int = 200,
               **values: object) -> Response:
    return render(request, "stats_form.html", session, status_code=status_code,
                  section="statistikk", measures=MEASURES, dimensions=DIMENSIONS, **values)


async def stats_form(request: Request) -> Response:
    session = await login(request, Permission.STATS)
    return _form_page(request, session, chosen={"maal": "kontakter", "etter": ["fylke"]})


async def stats_start(request: Request) -> Response:
    session = await login(request, Permission.STATS)
    raw = await checked_form(request, session)
    form = {k: [str(v)[:40] for v in raw.getlist(k)] for k in ("maal", "etter", "periode")}
    try:
        measure, by, period = _choices(form)
    except StatsError as exc:
        chosen = {"maal": (form["maal"] or [""])[0], "etter": form["etter"],
                  "periode": (form["periode"] or [""])[0]}
        return _form_page(request, session, chosen=chosen, problem=str(exc), status_code=400)
    database = ctx(request).data.database
    mirror = mirror_directory(ctx(request).config.database)

    def work(job: Job) -> Table:
        return build_table(
            database, measure=measure, by=by, period=period, progress=job.note, mirror=mirror
        )

    title = f"Statistikk: {measure} etter {', '.join(by)}, {period}"
    job = ctx(request).jobs.start(session.user.username, "stats", title, work,
                                  measure=measure, by=by, period=period)
    return redirect(request, f"/jobber/{job.id}")


def _job(request: Request, username: str) -> Job:
    job = ctx(request).jobs.get(request.path_params["job_id"], username)
    if job is None or job.kind != "stats" or job.running or job.error:
        raise NotFound("Fant ikke tabellen (jobber glemmes når tjenesten startes på nytt).")
    return job


async def stats_result(request: Request) -> Response:
    session = await login(request, Permission.STATS)
    job = _job(request, session.user.username)
    table: Table = job.result
    return render(request, "stats_result.html", session, section="statistikk", job=job,
                  table=table, formats=FORMATS,
                  suppressed=sum(1 for c in table.cells if c.value is None))


def _file(table: Table, fmt: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"statistikk.{fmt}"
        write_table(table, path, fmt)
        return path.read_bytes()


async def stats_download(request: Request) -> Response:
    session = await login(request, Permission.STATS)
    job = _job(request, session.user.username)
    fmt = request.path_params["fmt"]
    if fmt not in FORMATS:
        raise NotFound(f"Ukjent format {fmt}.")
    if request.query_params.get("vis") is None:
        # A file taken away (not the chart shown on the page) is an export: audit it.
        await call(ctx(request).data.accounts.audit, session.user.username, "stats_export",
                   client=client(request), detail=f"{job.title} ({fmt})")
    body = await call(_file, job.result, fmt)
    p = job.params
    name = f"{p['measure']}-{'-'.join(p['by'])}-{p['period']}.{fmt}"
    disposition = "inline" if request.query_params.get("vis") is not None else "attachment"
    if fmt != "png" and disposition == "inline":
        raise Forbidden("Bare figuren kan vises på siden.")
    return Response(body, media_type=MEDIA_TYPES[fmt],
                    headers={"content-disposition": f'{disposition}; filename="{name}"'})


ROUTES = [
    Route("/statistikk", stats_form, methods=["GET"]),
    Route("/statistikk", stats_start, methods=["POST"]),
    Route("/statistikk/resultat/{job_id}", stats_result, methods=["GET"]),
    Route("/statistikk/resultat/{job_id}/fil.{fmt}", stats_download, methods=["GET"]),
]
