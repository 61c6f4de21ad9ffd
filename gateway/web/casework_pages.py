"""Case work pages: the manual-control worklist, search, the bill page and overrides.

An override goes through ``gateway.casework.overrides.override`` (as ``gateway claims
override``) with the logged-in user's name as ``by``; it is refused with the same Norwegian
reasons. Search by national id is for roles with ``NATIONAL_ID_SEARCH`` only, is sent by POST
(so the number lands in no URL, log or browser history) and is written to the audit log; the
number is shown masked everywhere, to everyone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.casework.lookup import CaseworkError, parse_kroner
from gateway.casework.overrides import APPROVE, REJECT
from gateway.records import BillSearch, WorklistFilter
from gateway.users.roles import Permission
from gateway.web.context import (
    NotFound,
    call,
    checked_form,
    client,
    ctx,
    login,
    redirect,
    render,
)
from gateway.web.replies import readable_reply

PAGE_SIZE = 50
_NOTICES = {
    "overstyrt": "Overstyringen er lagret og er nå regningens gjeldende status.",
}


def _int(value: str | None, default: int = 0) -> int:
    return int(value) if value and value.isdigit() and len(value) < 10 else default


async def worklist(request: Request) -> Response:
    session = await login(request, Permission.CASEWORK_READ)
    q = request.query_params
    chosen = WorklistFilter(
        sender_her=q.get("avsender") or None,
        practitioner_type=q.get("behandlertype") or None,
        rule_id=q.get("regel") or None,
    )
    page = max(1, _int(q.get("side"), 1))
    items, summary = await call(
        ctx(request).data.worklist, chosen, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    return render(
        request, "worklist.html", session, section="arbeidsliste", items=items,
        summary=summary, chosen=chosen, page=page, pages=max(1, -(-summary.count // PAGE_SIZE)),
    )


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CaseworkError(f"{field}: skriv datoen som ÅÅÅÅ-MM-DD.") from None


async def search_page(request: Request) -> Response:
    session = await login(request, Permission.CASEWORK_READ)
    return render(request, "search.html", session, section="sok", results=None, asked={})


async def search(request: Request) -> Response:
    session = await login(request, Permission.CASEWORK_READ)
    form = await checked_form(request, session)
    asked = {k: str(form.get(k, "")).strip()[:100] for k in
             ("guid", "regningsnr", "msgid", "avsender", "fra", "til", "fnr")}
    context = ctx(request)
    national_id = asked.pop("fnr")
    if national_id and not session.user.can(Permission.NATIONAL_ID_SEARCH):
        return render(request, "search.html", session, section="sok", results=None,
                      asked=asked, status_code=403,
                      problem="Din rolle kan ikke søke på fødselsnummer.")
    try:
        start, end = _day(asked["fra"], "Fra"), _day(asked["til"], "Til")
    except CaseworkError as exc:
        return render(request, "search.html", session, section="sok", results=None,
                      asked=asked, problem=str(exc), status_code=400)
    wanted = BillSearch(
        guid=asked["guid"] or None,
        regning_nr=asked["regningsnr"] or None,
        msg_id=asked["msgid"] or None,
        sender_her=asked["avsender"] or None,
        treated_from=datetime.combine(start, time()) if start else None,
        treated_until=datetime.combine(end + timedelta(days=1), time()) if end else None,
        national_id=national_id or None,
    )
    if wanted.empty:
        return render(request, "search.html", session, section="sok", results=None,
                      asked=asked, problem="Fyll ut minst ett søkefelt.")
    if national_id:
        await call(context.data.accounts.audit, session.user.username, "search_national_id",
                   client=client(request), detail=f"treff avgrenset av {len(asked)} andre felt")
    results = await call(context.data.search, wanted)
    return render(request, "search.html", session, section="sok", results=results,
                  asked=asked, searched_national_id=bool(national_id))


async def bill_page(request: Request) -> Response:
    session = await login(request, Permission.CASEWORK_READ)
    bill_id = _int(request.path_params["bill_id"], -1)
    view = await call(ctx(request).data.bill_view, bill_id)
    if view is None:
        raise NotFound(f"Fant ingen regning med id {request.path_params['bill_id']}.")
    apprecs = []
    for reply in view.replies:
        if reply.kind == "apprec" and reply.received_id == view.details.bill.received_id:
            body = await call(ctx(request).data.reply_body, reply.id)
            apprecs.append((reply, await call(readable_reply, body)))
    notice = _NOTICES.get(request.query_params.get("melding", ""))
    return render(request, "bill.html", session, section="arbeidsliste", view=view,
                  bill=view.details.bill, apprecs=apprecs, notice=notice,
                  can_override=session.user.can(Permission.CASEWORK_WRITE))


async def override_bill(request: Request) -> Response:
    session = await login(request, Permission.CASEWORK_WRITE)
    form = await checked_form(request, session)
    bill_id = _int(request.path_params["bill_id"], -1)
    choice = str(form.get("vedtak", ""))
    reason = str(form.get("begrunnelse", "")).strip()
    amount_text = str(form.get("belop", "")).strip()
    context = ctx(request)
    try:
        if choice not in ("godkjenn", "avvis"):
            raise CaseworkError("Velg godkjenn eller avvis.")
        amount = parse_kroner(amount_text) if amount_text else None
        bill, record = await call(
            context.data.override,
            bill_id,
            decision=APPROVE if choice == "godkjenn" else REJECT,
            reason=reason,
            by=session.user.username,
            amount_ore=amount,
        )
    except CaseworkError as exc:
        view = await call(context.data.bill_view, bill_id, with_explanation=False)
        if view is None:
            raise NotFound(f"Fant ingen regning med id {bill_id}.") from exc
        return render(request, "bill.html", session, section="arbeidsliste", view=view,
                      bill=view.details.bill, apprecs=[], problem=str(exc), status_code=400,
                      can_override=True, form={"vedtak": choice, "begrunnelse": reason,
                                               "belop": amount_text})
    await call(
        context.data.accounts.audit, session.user.username, "override",
        target=f"bill {bill.id}", client=client(request),
        detail=f"overstyring {record.id}: {record.previous_status} -> {record.decision} "
               f"{record.amount_ore} øre",
    )
    return redirect(request, f"/regninger/{bill.id}", melding="overstyrt")


ROUTES = [
    Route("/arbeidsliste", worklist, methods=["GET"]),
    Route("/sok", search_page, methods=["GET"]),
    Route("/sok", search, methods=["POST"]),
    Route("/regninger/{bill_id}", bill_page, methods=["GET"]),
    Route("/regninger/{bill_id}/overstyr", override_bill, methods=["POST"]),
]
