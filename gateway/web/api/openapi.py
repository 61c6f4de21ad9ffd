"""The OpenAPI 3.1 document of the claim status API, served at ``/api/v1/openapi.json`` and
tested against the running server (schemathesis, ``tests/test_web_api_schema.py``)."""

from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
_MONEY = {"type": "number", "description": "Kroner, to desimaler."}
_TIME = {"type": "string", "format": "date-time",
         "description": "Norsk tid med UTC-forskyvning, f.eks. 2026-11-23T13:00:00+01:00."}

_MERKNAD = {
    "type": "object",
    "required": ["nummer", "tekst"],
    "additionalProperties": False,
    "properties": {
        "nummer": {"type": "string", "description": "Regelens kode, f.eks. 766."},
        "tekst": {"type": "string", "description": "Forklaring på norsk."},
    },
}
_STATUSES = {
    "meldingsstatus": {"enum": ["mottatt", "sendt_til_behandling", "feil_i_melding"]},
    "kontrollstatus": {
        "enum": ["ikke_sendt_til_kontroll", "kontrolleres_manuelt", "ferdig_kontrollert"]
    },
    "utbetalingsstatus": {
        "enum": ["ikke_sendt_til_utbetaling", "sendt_til_utbetaling", "utbetalt",
                 "ingen_utbetaling"]
    },
}


def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "additionalProperties": False,
            "properties": properties}


_REGNING = _object(
    ["guid", "regningsnummer", "msgId", "status", "kontrollstatus", "utbetalingsstatus",
     "behandlingstidspunkt", "mottattidspunkt", "kreditering", "kravbelop", "godkjentBelop",
     "rebehandlet", "merknader", "utbetaling", "sistEndret"],
    {
        "guid": _STR,
        "regningsnummer": _STR,
        "msgId": _NULLABLE_STR,
        "status": {"enum": ["behandles", "godkjent", "avvist"]},
        "kontrollstatus": {"enum": ["kontrolleres_manuelt", "ferdig_kontrollert"]},
        "utbetalingsstatus": _STATUSES["utbetalingsstatus"],
        "behandlingstidspunkt": _TIME,
        "mottattidspunkt": _TIME,
        "kreditering": {"type": "boolean"},
        "kravbelop": _MONEY,
        "godkjentBelop": {"type": ["number", "null"],
                          "description": "Kroner; null mens regningen kontrolleres manuelt."},
        "rebehandlet": {"type": "boolean",
                        "description": "Gjeldende status kommer fra en rebehandling."},
        "merknader": {"type": "array", "items": {"$ref": "#/components/schemas/Merknad"}},
        "utbetaling": {
            "oneOf": [
                {"type": "null"},
                _object(["belop", "utbetaltdato", "utbetalingsrunde"], {
                    "belop": _MONEY,
                    "utbetaltdato": {"type": ["string", "null"], "format": "date"},
                    "utbetalingsrunde": _STR,
                }),
            ]
        },
        "sistEndret": _TIME,
    },
)

_MELDING_PROPS: dict[str, Any] = {
    "msgId": _NULLABLE_STR,
    **_STATUSES,
    "mottattidspunkt": _TIME,
    "apprecStatus": {"type": ["integer", "null"], "enum": [1, 2, 3, None]},
    "antallRegninger": {"type": "integer", "minimum": 0},
    "sumKravbelop": _MONEY,
    "sumUtbetaltbelop": _MONEY,
    "sistEndret": _TIME,
}
_MELDING_REQUIRED = list(_MELDING_PROPS)

_ERROR = _object(["feil", "melding"], {"feil": _STR, "melding": _STR})

_LIMIT = {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}
_AFTER = {"name": "etter", "in": "query", "required": False,
          "description": "Verdien av «neste» fra forrige side.",
          "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"}}
_SINCE = {"name": "since", "in": "query", "required": False,
          "description": "Bare det som er mottatt eller endret (overstyrt, rebehandlet, "
                         "utbetalt) etter dette tidspunktet.",
          "schema": {"type": "string", "format": "date-time"}}


def _responses(ok: dict[str, Any], *, not_found: bool) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Feil"}}}}
    out: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": ok}}},
        "400": {"description": "Ugyldig parameter", **error},
        "401": {"description": "Mangler gyldig token eller klientsertifikat", **error},
    }
    if not_found:
        out["404"] = {"description": "Finnes ikke (eller tilhører en annen avsender)", **error}
    return out


def _page(item: str, key: str) -> dict[str, Any]:
    return _object([key, "neste"], {
        key: {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
        "neste": {"type": ["string", "null"],
                  "description": "Gi som «etter» for neste side; null på siste side."},
    })


def document(server_url: str) -> dict[str, Any]:
    """The OpenAPI document, with ``server_url`` as the API's base."""
    id_param = {"in": "path", "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 200}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gateway: status for innsendte krav",
            "version": "1.0.0",
            "description": (
                "Status for behandlerkravmeldinger og regninger, etter modell av KUHRs Krav API: "
                "meldingsstatus, kontrollstatus, utbetalingsstatus, merknader og utbetaling. "
                "En avsender ser bare sine egne krav; andres krav gir 404."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"helseid": []}, {"mtls": []}],
        "paths": {
            "/meldinger": {"get": {
                "summary": "Avsenderens meldinger, eldste først",
                "operationId": "listMeldinger",
                "parameters": [_SINCE, _LIMIT, _AFTER],
                "responses": _responses(_page("Melding", "meldinger"), not_found=False),
            }},
            "/meldinger/{msgId}": {"get": {
                "summary": "Én melding (MsgId) med regninger og merknader",
                "operationId": "hentMelding",
                "parameters": [{"name": "msgId", **id_param}],
                "responses": _responses({"$ref": "#/components/schemas/MeldingDetaljer"},
                                        not_found=True),
            }},
            "/regninger": {"get": {
                "summary": "Avsenderens regninger, eldste først",
                "operationId": "listRegninger",
                "parameters": [
                    {"name": "guid", "in": "query", "required": False,
                     "schema": {"type": "string", "maxLength": 200}},
                    {"name": "regningsnummer", "in": "query", "required": False,
                     "schema": {"type": "string", "maxLength": 200}},
                    _SINCE, _LIMIT, _AFTER,
                ],
                "responses": _responses(_page("Regning", "regninger"), not_found=False),
            }},
            "/regninger/{guid}": {"get": {
                "summary": "Den nyeste regningen med denne Guid",
                "operationId": "hentRegning",
                "parameters": [{"name": "guid", **id_param}],
                "responses": _responses({"$ref": "#/components/schemas/Regning"},
                                        not_found=True),
            }},
        },
        "components": {
            "securitySchemes": {
                "helseid": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                            "description": "Signert JWT fra den konfigurerte utstederen."},
                "mtls": {"type": "mutualTLS",
                         "description": "Klientsertifikatet fra avsenderens CPA."},
            },
            "schemas": {
                "Merknad": _MERKNAD,
                "Regning": _REGNING,
                "Melding": _object(_MELDING_REQUIRED, _MELDING_PROPS),
                "MeldingDetaljer": _object(
                    [*_MELDING_REQUIRED, "merknader", "regninger"],
                    {
                        **_MELDING_PROPS,
                        "merknader": {"type": "array",
                                      "items": {"$ref": "#/components/schemas/Merknad"}},
                        "regninger": {"type": "array",
                                      "items": {"$ref": "#/components/schemas/Regning"}},
                    },
                ),
                "Feil": _ERROR,
            },
        },
    }
