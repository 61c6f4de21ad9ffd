"""KUHR's status model (the Krav API's meldingsstatus, kontrollstatus, utbetalingsstatus,
merknader and rebehandling), computed from what gateway stores. Pure: records in, JSON out.

The mapping (gateway decides at intake, so nothing stays ``mottatt`` for long):

- meldingsstatus: ``feil_i_melding`` when the message was rejected as a whole (no bills stored,
  or a message rule rejected it); ``mottatt`` while it waits for an operator (our own failure);
  else ``sendt_til_behandling``.
- kontrollstatus per bill: ``kontrolleres_manuelt`` while a rule's manual-control flag waits for
  a case worker's decision; else ``ferdig_kontrollert``. Per message: ``ikke_sendt_til_kontroll``
  for ``feil_i_melding``, ``kontrolleres_manuelt`` if any bill is, else ``ferdig_kontrollert``.
- status per bill: ``behandles`` in manual control, else the effective status (``godkjent`` /
  ``avvist``, after overrides and rebehandling).
- utbetalingsstatus per bill, from the payout ledger's target (what should be paid in all) and
  its lines: ``ingen_utbetaling`` when nothing is or was to be paid; ``utbetalt`` when the lines
  equal the target and their runs are done; ``sendt_til_utbetaling`` when they equal it but a run
  is still being sent; else ``ikke_sendt_til_utbetaling`` (waiting for the next run).
  Per message: ``ingen_utbetaling`` if every bill is, ``utbetalt`` if every payable bill is,
  ``sendt_til_utbetaling`` if any bill is, else ``ikke_sendt_til_utbetaling``.

Merknader are the rule findings stored with the decision: ``nummer`` is the rule's code,
``tekst`` its Norwegian text with any national id masked. Amounts are kroner.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.casework.lookup import masked
from gateway.clock import OSLO
from gateway.logs import redact
from gateway.records import SenderMessage, StoredFinding
from gateway.rules.base import Severity
from gateway.web.data import ClaimBill, ClaimMessage


def _kroner(ore: int) -> float:
    return round(ore / 100, 2)


def _time(moment: datetime) -> str:
    """Norwegian time with its offset, to the second (``2026-11-23T13:00:00+01:00``)."""
    local = moment.replace(tzinfo=OSLO) if moment.tzinfo is None else moment.astimezone(OSLO)
    return local.isoformat(timespec="seconds")


def merknader(findings: Sequence[StoredFinding], patient_id: str = "") -> list[dict[str, str]]:
    return [
        {"nummer": f.code, "tekst": redact(masked(f.text, patient_id) if patient_id else f.text)}
        for f in findings
    ]


def in_manual_control(c: ClaimBill) -> bool:
    b = c.bill
    return (
        c.flags.manual
        and b.override_kind != "override"
        and not b.kreditering
        and b.credited_by is None
    )


def bill_payout_status(c: ClaimBill) -> str:
    if in_manual_control(c):
        return "ikke_sendt_til_utbetaling"
    paid = sum(x.amount_ore for x in c.payout_lines)
    if c.target_ore == 0 and paid == 0:
        return "ingen_utbetaling"
    if paid == c.target_ore:
        if all(x.run_state == "done" for x in c.payout_lines):
            return "utbetalt"
        return "sendt_til_utbetaling"
    return "ikke_sendt_til_utbetaling"


def bill_json(c: ClaimBill) -> dict[str, Any]:
    b = c.bill
    manual = in_manual_control(c)
    paid = sum(x.amount_ore for x in c.payout_lines)
    payout: dict[str, Any] | None = None
    if c.payout_lines:
        last = c.payout_lines[-1]
        payout = {
            "belop": _kroner(paid),
            "utbetaltdato": last.run_at.astimezone(OSLO).date().isoformat()
            if last.run_state == "done"
            else None,
            "utbetalingsrunde": last.run_key,
        }
    return {
        "guid": b.guid,
        "regningsnummer": b.regning_nr,
        "msgId": b.msg_id,
        "status": "behandles" if manual else b.effective_status,
        "kontrollstatus": "kontrolleres_manuelt" if manual else "ferdig_kontrollert",
        "utbetalingsstatus": bill_payout_status(c),
        "behandlingstidspunkt": _time(b.dato_tid),
        "mottattidspunkt": _time(b.received_at),
        "kreditering": b.kreditering,
        "kravbelop": _kroner(b.sum_refusjon_ore),
        "godkjentBelop": None if manual else _kroner(b.effective_ore),
        "rebehandlet": b.override_kind == "rebehandling",
        "merknader": merknader(c.findings, b.patient_id),
        "utbetaling": payout,
        "sistEndret": _time(c.flags.changed_at),
    }


def message_statuses(m: SenderMessage, bills: Sequence[ClaimBill],
                     message_findings: Sequence[StoredFinding]) -> dict[str, str]:
    rejected_whole = m.outcome == "rejected" and (
        not bills or any(f.severity == Severity.REJECT_MESSAGE.value for f in message_findings)
    )
    if m.outcome == "failed":
        melding, kontroll = "mottatt", "ikke_sendt_til_kontroll"
    elif rejected_whole:
        melding, kontroll = "feil_i_melding", "ikke_sendt_til_kontroll"
    else:
        melding = "sendt_til_behandling"
        kontroll = (
            "kontrolleres_manuelt" if any(in_manual_control(c) for c in bills)
            else "ferdig_kontrollert"
        )
    states = [bill_payout_status(c) for c in bills]
    payable = [s for s in states if s != "ingen_utbetaling"]
    if rejected_whole or not payable:
        utbetaling = "ingen_utbetaling"
    elif all(s == "utbetalt" for s in payable):
        utbetaling = "utbetalt"
    elif "sendt_til_utbetaling" in payable:
        utbetaling = "sendt_til_utbetaling"
    else:
        utbetaling = "ikke_sendt_til_utbetaling"
    return {"meldingsstatus": melding, "kontrollstatus": kontroll, "utbetalingsstatus": utbetaling}


def message_json(claim: ClaimMessage, *, with_bills: bool) -> dict[str, Any]:
    m, bills = claim.message, claim.bills
    out: dict[str, Any] = {
        "msgId": m.msg_id,
        **message_statuses(m, bills, claim.message_findings),
        "mottattidspunkt": _time(m.received_at),
        "apprecStatus": m.apprec_status,
        "antallRegninger": len(bills),
        "sumKravbelop": _kroner(sum(c.bill.sum_refusjon_ore for c in bills)),
        "sumUtbetaltbelop": _kroner(sum(x.amount_ore for c in bills for x in c.payout_lines)),
        "sistEndret": _time(m.changed_at),
    }
    if with_bills:
        out["merknader"] = merknader(claim.message_findings)
        out["regninger"] = [bill_json(c) for c in bills]
    return out
