"""The claim status API for senders (``/api/v1``), modelled on KUHR's Krav API.

    GET /api/v1/openapi.json                 this API's OpenAPI document (no login)
    GET /api/v1/meldinger                    the sender's messages (paging, ``since``)
    GET /api/v1/meldinger/{msgId}            one message with its bills and merknader
    GET /api/v1/regninger                    the sender's bills (``guid``, ``regningsnummer``,
                                             paging, ``since``)
    GET /api/v1/regninger/{guid}             the newest bill with this Guid

A sender sees only its own claims: anything else is 404, exactly as for a claim that does not
exist, so the API never tells one sender what another has sent. Without valid credentials: 401.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.clock import OSLO
from gateway.web.api import status
from gateway.web.api.auth import SenderAuth
from gateway.web.api.openapi import document
from gateway.web.context import call, ctx

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_ID_MAX = 200  # longest Guid/MsgId/RegningNr looked up


class ApiProblem(Exception):
    def __init__(self, status_code: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status_code, self.code, self.text = status_code, code, text

    def response(self) -> Response:
        headers = {"www-authenticate": 'Bearer realm="gateway"'} if self.status_code == 401 \
            else None
        return JSONResponse({"feil": self.code, "melding": self.text},
                            status_code=self.status_code, headers=headers)


_UNAUTHORISED = ApiProblem(401, "ikke_autentisert",
                           "Gyldig token (Bearer) eller klientsertifikat kreves.")
_NOT_FOUND = ApiProblem(404, "ikke_funnet", "Fant ikke kravet.")


async def _sender(request: Request) -> str:
    auth: SenderAuth = request.app.state.sender_auth
    sender = await auth.sender(request)
    if sender is None:
        raise _UNAUTHORISED
    return sender


def _paging(
    request: Request, filters: frozenset[str] = frozenset()
) -> tuple[datetime | None, int, int]:
    q = request.query_params
    unknown = sorted(set(q) - {"since", "limit", "etter"} - filters)
    if unknown:
        raise ApiProblem(400, "ukjent_parameter", f"Ukjent parameter: {unknown[0]}.")
    since: datetime | None = None
    if "since" in q:
        try:
            since = datetime.fromisoformat(q["since"])
        except ValueError:
            raise ApiProblem(400, "ugyldig_parameter",
                             "since må være et ISO 8601-tidspunkt.") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=OSLO)
    limit = _number(q.get("limit"), "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiProblem(400, "ugyldig_parameter", f"limit må være 1–{MAX_LIMIT}.")
    return since, limit, _number(q.get("etter"), "etter", 0)


def _number(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or len(text) > 12:
        raise ApiProblem(400, "ugyldig_parameter", f"{name} må være et heltall.")
    return int(text)


def _identifier(value: str) -> str:
    if not value or len(value) > _ID_MAX or not value.isprintable():
        raise _NOT_FOUND
    return value


async def _guarded(request: Request, handler: Any) -> Response:
    try:
        sender = await _sender(request)
        return JSONResponse(await handler(request, sender))
    except ApiProblem as problem:
        return problem.response()


async def messages(request: Request) -> Response:
    async def handler(request: Request, sender: str) -> dict[str, Any]:
        since, limit, after = _paging(request)
        data = ctx(request).data
        found = await call(data.sender_messages, sender, since=since, after_id=after,
                           limit=limit)
        claims = [await call(data.claim_message, m) for m in found]
        return {
            "meldinger": [status.message_json(c, with_bills=False) for c in claims],
            "neste": str(found[-1].message_id) if len(found) == limit else None,
        }

    return await _guarded(request, handler)


async def message(request: Request) -> Response:
    async def handler(request: Request, sender: str) -> dict[str, Any]:
        msg_id = _identifier(request.path_params["msg_id"])
        claim = await call(ctx(request).data.sender_message, sender, msg_id)
        if claim is None:
            raise _NOT_FOUND
        return status.message_json(claim, with_bills=True)

    return await _guarded(request, handler)


async def bills(request: Request) -> Response:
    async def handler(request: Request, sender: str) -> dict[str, Any]:
        since, limit, after = _paging(request, frozenset({"guid", "regningsnummer"}))
        q = request.query_params
        found = await call(
            ctx(request).data.sender_bills, sender,
            guid=q.get("guid", "")[:_ID_MAX] or None,
            regning_nr=q.get("regningsnummer", "")[:_ID_MAX] or None,
            since=since, after_id=after, limit=limit,
        )
        return {
            "regninger": [status.bill_json(c) for c in found],
            "neste": str(found[-1].bill.id) if len(found) == limit else None,
        }

    return await _guarded(request, handler)


async def bill(request: Request) -> Response:
    async def handler(request: Request, sender: str) -> dict[str, Any]:
        guid = _identifier(request.path_params["guid"])
        found = await call(ctx(request).data.sender_bills, sender, guid=guid, limit=MAX_LIMIT)
        if not found:
            raise _NOT_FOUND
        return status.bill_json(found[-1])

    return await _guarded(request, handler)


async def openapi(request: Request) -> Response:
    return JSONResponse(document(ctx(request).web.root_path + "/api/v1"))


ROUTES = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/meldinger", messages, methods=["GET"]),
    Route("/meldinger/{msg_id}", message, methods=["GET"]),
    Route("/regninger", bills, methods=["GET"]),
    Route("/regninger/{guid}", bill, methods=["GET"]),
]
