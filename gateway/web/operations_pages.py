"""Operations pages: the overview (depths of the outbox, the spool and the IMAP mailboxes,
certificates and the age of the revocation lists, payout), received messages with their
replies and acknowledgments, one reply decoded, and dead letters with requeue and discard
(the same store calls as ``gateway outbox requeue|discard``, as the logged-in user)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.clock import OSLO, bound, parse_moment, utc_now
from gateway.records import Outcome
from gateway.service.health import days_to_expiry
from gateway.users.roles import Permission
from gateway.web.context import NotFound, call, checked_form, client, ctx, login, redirect, render
from gateway.web.payout_pages import payout_overview
from gateway.web.probes import revocation_state
from gateway.web.replies import readable_reply

_NOTICES = {
    "sendt": "Brevene er satt i kø og sendes på nytt.",
    "forkastet": "Brevene er forkastet (de beholdes, med begrunnelsen).",
    "ingen": "Ingen av de valgte var døde brev (ingenting endret).",
}


@dataclass(frozen=True, slots=True)
class Certificate:
    name: str
    path: Path
    days_left: float | None
    problem: str | None


def _certificates(request: Request) -> list[Certificate]:
    config = ctx(request).config
    found = [("Signering (AppRec)", config.signing.cert_file)]
    for number, pair in enumerate(config.security.decryption):
        found.append(("Dekryptering" + (" (forrige)" if number else ""), pair.cert_file))
    result: list[Certificate] = []
    for name, path in found:
        try:
            result.append(Certificate(name, path, days_to_expiry(path), None))
        except (OSError, ValueError) as exc:
            result.append(Certificate(name, path, None, str(exc)))
    return result


def _spool_depth(request: Request) -> dict[str, int | None]:
    spool = ctx(request).config.spool
    depth: dict[str, int | None] = {}
    for name, folder in (("innkommende", spool.incoming), ("under arbeid", spool.work),
                         ("parkert (bad)", spool.bad)):
        try:
            depth[name] = (
                sum(1 for p in folder.iterdir() if p.is_file()) if folder.exists() else 0
            )
        except OSError:
            depth[name] = None
    return depth


async def overview(request: Request) -> Response:
    session = await login(request, Permission.OPERATIONS_READ)
    data = ctx(request).data
    return render(
        request, "operations.html", session, section="drift",
        outbox=await call(data.outbox_summary),
        counts=await call(data.counts),
        spool=await call(_spool_depth, request),
        mailboxes=await ctx(request).mailbox_probe.depths(),
        certificates=await call(_certificates, request),
        revocation=await call(revocation_state, ctx(request).config),
        now=utc_now(),
        warn_days=ctx(request).config.security.certificate_warn_days,
        payout=await call(payout_overview, request) if session.user.can(Permission.PAYOUT_READ)
        else None,
    )


def _since(text: str) -> datetime:
    """The form's "from" (naive: Norwegian time); the last two days when empty or unreadable."""
    try:
        return bound(parse_moment(text), aware=True)
    except ValueError:
        return utc_now() - timedelta(days=2)


async def messages(request: Request) -> Response:
    session = await login(request, Permission.OPERATIONS_READ)
    q = request.query_params
    since = _since(q.get("fra", ""))
    outcome = q.get("utfall") if q.get("utfall") in {o.value for o in Outcome} else None
    rows = await call(ctx(request).data.received, since=since, outcome=outcome, limit=500)
    return render(request, "messages.html", session, section="meldinger", rows=rows,
                  since=since, since_local=since.astimezone(OSLO).strftime("%Y-%m-%dT%H:%M"),
                  outcome=outcome, outcomes=[o.value for o in Outcome])


async def message(request: Request) -> Response:
    session = await login(request, Permission.OPERATIONS_READ)
    received_id = request.path_params["received_id"]
    found = await call(ctx(request).data.received_one, received_id)
    if found is None:
        raise NotFound(f"Fant ingen mottatt melding {received_id}.")
    summary, replies = found
    decoded = []
    for reply in replies:
        body = await call(ctx(request).data.reply_body, reply.id)
        decoded.append((reply, await call(readable_reply, body)))
    return render(request, "message.html", session, section="meldinger", m=summary,
                  replies=decoded)


async def dead_letters(request: Request) -> Response:
    session = await login(request, Permission.OPERATIONS_READ)
    rows = await call(ctx(request).data.dead_letters)
    return render(request, "dead_letters.html", session, section="dodbrev", rows=rows,
                  notice=_NOTICES.get(request.query_params.get("melding", "")),
                  can_write=session.user.can(Permission.OPERATIONS_WRITE))


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit() and len(v) < 12][:1000]


async def requeue(request: Request) -> Response:
    session = await login(request, Permission.OPERATIONS_WRITE)
    form = await checked_form(request, session)
    ids = _ids([str(v) for v in form.getlist("svar")])
    data = ctx(request).data
    changed = await call(data.requeue, ids, by=session.user.username)
    await call(data.accounts.audit, session.user.username, "requeue", client=client(request),
               target="replies " + ",".join(map(str, changed)) if changed else None,
               detail=f"{len(changed)} av {len(ids)} satt i kø")
    return redirect(request, "/drift/dodbrev", melding="sendt" if changed else "ingen")


async def discard(request: Request) -> Response:
    session = await login(request, Permission.OPERATIONS_WRITE)
    form = await checked_form(request, session)
    ids = _ids([str(v) for v in form.getlist("svar")])
    reason = str(form.get("begrunnelse", "")).strip()[:500]
    data = ctx(request).data
    if not reason:
        rows = await call(data.dead_letters)
        return render(request, "dead_letters.html", session, section="dodbrev", rows=rows,
                      can_write=True, status_code=400,
                      problem="Skriv en begrunnelse for å forkaste brev.")
    changed = await call(data.discard, ids, reason, by=session.user.username)
    await call(data.accounts.audit, session.user.username, "discard", client=client(request),
               target="replies " + ",".join(map(str, changed)) if changed else None,
               detail=reason)
    return redirect(request, "/drift/dodbrev", melding="forkastet" if changed else "ingen")


async def reply(request: Request) -> Response:
    session = await login(request, Permission.OPERATIONS_READ)
    reply_id = request.path_params["reply_id"]
    found = await call(ctx(request).data.reply, reply_id)
    if found is None:
        raise NotFound(f"Fant ikke svar {reply_id}.")
    body = await call(ctx(request).data.reply_body, reply_id)
    return render(request, "reply.html", session, section="meldinger", r=found,
                  decoded=await call(readable_reply, body))


ROUTES = [
    Route("/drift", overview, methods=["GET"]),
    Route("/drift/meldinger", messages, methods=["GET"]),
    Route("/drift/meldinger/{received_id:int}", message, methods=["GET"]),
    Route("/drift/svar/{reply_id:int}", reply, methods=["GET"]),
    Route("/drift/dodbrev", dead_letters, methods=["GET"]),
    Route("/drift/dodbrev/send-igjen", requeue, methods=["POST"]),
    Route("/drift/dodbrev/forkast", discard, methods=["POST"]),
]
