"""Text (Norwegian labels) and JSON (English keys) for the case-work commands.

The patient's national identity number is masked in both (``mask_national_id``), and any
text from the store that should happen to carry it is masked too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from gateway.casework.explain import Explanation, RuleRun
from gateway.casework.lookup import (
    MASK_NOTE,
    BillDetails,
    decimal_kroner,
    kroner,
    mask_national_id,
    masked,
)
from gateway.casework.replay import FindingSummary, ReplayChange, ReplayReport
from gateway.casework.ruleset import SEVERITY_LABELS, RuleInfo, abbreviate, severity_label
from gateway.clock import shown
from gateway.records import CaseBill, OverrideRecord, StoredFinding

_KIND_LABELS = {"override": "overstyring", "rebehandling": "rebehandling"}


def dumps(value: object) -> str:
    """JSON for ``--json`` output."""
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False)


def _when(moment: datetime) -> str:
    """An aware moment as Norwegian time with its offset; a naive one (DatoTid) as it is."""
    return shown(moment, timespec="minutes", sep=" ")


def _facts(facts: Mapping[str, str], patient_id: str) -> str:
    return ", ".join(f"{k}={masked(str(v), patient_id)}" for k, v in sorted(facts.items()))


def _masked_facts(facts: Mapping[str, str], patient_id: str) -> dict[str, str]:
    return {k: masked(str(v), patient_id) for k, v in sorted(facts.items())}


# --- claims show --------------------------------------------------------------------------------


def _effective(bill: CaseBill) -> str:
    text = f"{bill.effective_status}, {kroner(bill.effective_ore)} kr"
    if bill.override_id is None:
        return text + " (vedtaket)"
    kind = _KIND_LABELS.get(bill.override_kind or "", bill.override_kind or "")
    return text + f" ({kind} {bill.override_id})"


def show_text(details: BillDetails) -> str:
    b = details.bill
    pid = b.patient_id
    sender = f"HER-id {b.sender_her}" + (f" ({b.sender_name})" if b.sender_name else "")
    egenandel = "betalt" if b.betalt_egenandel else "ikke betalt"
    if b.kode_egenandel:
        egenandel += f", fritakskode {b.kode_egenandel}"
    credit = "ja" if b.kreditering else "nei"
    if b.credited_by is not None:
        credit += f" (regningen er kreditert av regning {b.credited_by})"
    out = [
        f"Regning {b.id}",
        f"  RegningNr:         {b.regning_nr}",
        f"  Guid:              {b.guid}",
        f"  Avsender:          {sender}",
        f"  Behandler:         {b.practitioner_id}",
        f"  DatoTid:           {_when(b.dato_tid)}",
        f"  Mottatt:           {_when(b.received_at)} (melding {b.message_id}, "
        f"MsgId {b.msg_id or '-'})",
        f"  Pasient:           {mask_national_id(pid)} ({b.patient_id_type}; {MASK_NOTE})",
        f"  Egenandel:         {egenandel}",
        f"  Kreditering:       {credit}",
        "",
        "Linjer:",
    ]
    for line in details.lines:
        if line.kind == "takst":
            out.append(
                f"  takst     {line.code:<12} antall {line.antall or 0:>3}  "
                f"{kroner(line.amount_ore):>12} kr"
            )
        else:
            system = f"  ({line.code_system})" if line.code_system else ""
            out.append(f"  {line.kind:<9} {line.code}{system}")
    apprec = f", AppRec-status {b.apprec_status}" if b.apprec_status is not None else ""
    out += [
        "",
        f"Krevd refusjon:      {kroner(b.sum_refusjon_ore)} kr",
        f"Vedtak:              {b.status}, godkjent {kroner(b.approved_ore)} kr "
        f"(regelsett {b.ruleset_version or 'ukjent'}{apprec})",
        f"Gjeldende status:    {_effective(b)}",
        "",
        "Merknader i vedtaket:",
    ]
    out += _findings_text(details.findings, pid) or ["  ingen"]
    if details.message_findings:
        out += ["", "Merknader på meldingen:"]
        out += _findings_text(details.message_findings, pid)
    out += ["", "Overstyringer:"]
    out += _overrides_text(details.overrides, pid) or ["  ingen"]
    return "\n".join(out)


def _findings_text(findings: Iterable[StoredFinding], patient_id: str) -> list[str]:
    out: list[str] = []
    for f in findings:
        out.append(
            f"  {f.rule_id}@{f.rule_version}  {f.code}  [{severity_label(f.severity)}]  "
            f"{masked(f.text, patient_id)}"
        )
        if f.facts:
            out.append(f"      fakta: {_facts(f.facts, patient_id)}")
    return out


def _overrides_text(overrides: Iterable[OverrideRecord], patient_id: str) -> list[str]:
    out: list[str] = []
    for o in overrides:
        kind = _KIND_LABELS.get(o.kind, o.kind)
        out.append(
            f"  {kind} {o.id}  {_when(o.at)}  {o.decision} {kroner(o.amount_ore)} kr  "
            f"av {o.by}  (før: {o.previous_status} {kroner(o.previous_ore)} kr)"
        )
        out.append(f"      begrunnelse: {masked(o.reason, patient_id)}")
    return out


def bill_json(b: CaseBill) -> dict[str, Any]:
    return {
        "id": b.id,
        "regning_nr": b.regning_nr,
        "guid": b.guid,
        "sender_her": b.sender_her,
        "sender_name": b.sender_name,
        "practitioner_id": b.practitioner_id,
        "dato_tid": b.dato_tid.isoformat(),
        "received_at": b.received_at.isoformat(),
        "message_id": b.message_id,
        "msg_id": b.msg_id,
        "patient_id_masked": mask_national_id(b.patient_id),
        "patient_id_type": b.patient_id_type,
        "kreditering": b.kreditering,
        "credited_by": b.credited_by,
        "betalt_egenandel": b.betalt_egenandel,
        "kode_egenandel": b.kode_egenandel,
        "claimed": decimal_kroner(b.sum_refusjon_ore),
        "decision": {
            "status": b.status,
            "approved": decimal_kroner(b.approved_ore),
            "ruleset_version": b.ruleset_version,
            "apprec_status": b.apprec_status,
        },
        "effective": {
            "status": b.effective_status,
            "approved": decimal_kroner(b.effective_ore),
            "overridden": b.override_id is not None,
            "override_id": b.override_id,
            "override_kind": b.override_kind,
        },
    }


def stored_finding_json(f: StoredFinding, patient_id: str) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "rule_version": f.rule_version,
        "code": f.code,
        "severity": f.severity,
        "text": masked(f.text, patient_id),
        "facts": _masked_facts(f.facts, patient_id),
    }


def override_json(o: OverrideRecord, patient_id: str) -> dict[str, Any]:
    return {
        "id": o.id,
        "kind": o.kind,
        "decision": o.decision,
        "approved": decimal_kroner(o.amount_ore),
        "reason": masked(o.reason, patient_id),
        "by": o.by,
        "at": o.at.isoformat(),
        "previous_status": o.previous_status,
        "previous_approved": decimal_kroner(o.previous_ore),
        "ruleset_version": o.ruleset_version,
    }


def show_json(details: BillDetails) -> dict[str, Any]:
    pid = details.bill.patient_id
    return {
        **bill_json(details.bill),
        "patient_id_note": "masked: birth date part only",
        "lines": [
            {
                "kind": line.kind,
                "code": line.code,
                "code_system": line.code_system,
                "amount": decimal_kroner(line.amount_ore),
                "antall": line.antall,
            }
            for line in details.lines
        ],
        "findings": [stored_finding_json(f, pid) for f in details.findings],
        "message_findings": [stored_finding_json(f, pid) for f in details.message_findings],
        "overrides": [override_json(o, pid) for o in details.overrides],
    }


def override_text(record: OverrideRecord, bill: CaseBill) -> str:
    return (
        f"Overstyring {record.id} lagret for regning {bill.id} (RegningNr {bill.regning_nr}): "
        f"{record.previous_status} {kroner(record.previous_ore)} kr -> "
        f"{record.decision} {kroner(record.amount_ore)} kr, av {record.by}.\n"
        "Vedtaket og merknadene er uendret; overstyringen er nå gjeldende status."
    )


# --- rules list ---------------------------------------------------------------------------------


def _validity(start: date, end: date | None) -> str:
    return f"{start.isoformat()} – {end.isoformat() if end else ''}".rstrip()


def rules_text(rules: Sequence[RuleInfo], on: date, family: str | None) -> str:
    scope = f" i familien {family}" if family else ""
    out = [f"{len(rules)} regler i kraft {on.isoformat()}{scope}:"]
    current = None
    for r in rules:
        if r.family != current:
            current = r.family
            out += ["", f"[{r.family}]"]
        who = "alle" if r.practitioners is None else ", ".join(r.practitioners)
        on_what = "melding" if r.scope.value == "message" else "regning"
        label = SEVERITY_LABELS[r.severity]
        out.append(f"  {r.id}@{r.version}  kode {r.shown_code}  {label} ({on_what})")
        out.append(f"      behandlere: {who};  takster/koder: {abbreviate(r.codes)}")
        out.append(f"      gyldig: {_validity(r.valid_from, r.valid_to)}")
        if r.basis:
            out.append(f"      grunnlag: {r.basis}")
        out.append(f"      tekst: {r.text}")
    return "\n".join(out)


def rules_json(rules: Sequence[RuleInfo], on: date) -> dict[str, Any]:
    return {
        "at": on.isoformat(),
        "rules": [
            {
                "id": r.id,
                "version": r.version,
                "family": r.family,
                "code": r.code,
                "apprec_code": r.apprec_code.value if r.apprec_code else None,
                "apprec_code_list": r.apprec_code.code_list if r.apprec_code else None,
                "severity": r.severity.value,
                "scope": r.scope.value,
                "practitioners": None if r.practitioners is None else list(r.practitioners),
                "codes": None if r.codes is None else list(r.codes),
                "valid_from": r.valid_from.isoformat(),
                "valid_to": r.valid_to.isoformat() if r.valid_to else None,
                "basis": r.basis,
                "text": r.text,
                "guidance": r.guidance,
            }
            for r in rules
        ],
    }


# --- rules explain ------------------------------------------------------------------------------


def _run_text(run: RuleRun, patient_id: str) -> list[str]:
    mark = "SLO TIL" if run.fired else "ok"
    out = [
        f"  {mark:<8} {run.rule_id}@{run.version}  kode {run.code}  "
        f"[{SEVERITY_LABELS[run.severity]}]"
    ]
    if run.fired:
        if run.text:
            out.append(f"      {masked(run.text, patient_id)}")
        if run.facts:
            out.append(f"      inndata: {_facts(run.facts, patient_id)}")
    return out


def explain_text(e: Explanation) -> str:
    b = e.bill
    pid = b.patient_id
    then = e.ruleset_then or "ukjent"
    same = "samme regelsett" if e.same_ruleset else "annet regelsett enn vedtaket"
    out = [
        f"Regning {b.id} (RegningNr {b.regning_nr}, Guid {b.guid})",
        f"  DatoTid {_when(b.dato_tid)}, mottatt {_when(e.received_at)}, "
        f"pasient {mask_national_id(pid)} ({MASK_NOTE})",
        "",
        f"Vedtaket (regelsett {then}): {b.status}, godkjent {kroner(b.approved_ore)} kr",
    ]
    out += _findings_text(e.stored_findings, pid) or ["  ingen merknader"]
    if e.stored_message_findings:
        out.append("  på meldingen:")
        out += _findings_text(e.stored_message_findings, pid)
    if b.override_id is not None:
        out.append(f"  Gjeldende status: {_effective(b)}")
    message_runs = [r for r in e.runs if r.on_message]
    bill_runs = [r for r in e.runs if not r.on_message]
    fired = sum(1 for r in e.runs if r.fired)
    out += [
        "",
        f"Kjørt nå (regelsett {e.ruleset_now}, {same}; tariffdata {e.tariff_version}):",
        f"  behandlertype {e.practitioner_type or 'ukjent'}, behandler {e.practitioner_id or '-'}",
        f"  {len(e.runs)} regler kjørt, {fired} slo til",
        "",
        "Meldingsregler:",
    ]
    for run in message_runs:
        out += _run_text(run, pid)
    if not message_runs:
        out.append("  ingen")
    out += ["", "Regler for regningen:"]
    for run in bill_runs:
        out += _run_text(run, pid)
    if not bill_runs:
        out.append("  ingen")
    if e.not_in_force:
        out += ["", "Ikke i kraft på DatoTid (ikke kjørt): " + ", ".join(e.not_in_force)]
    manual = " (kontrolleres manuelt)" if e.manual_now else ""
    out += [
        "",
        f"Resultat nå: {e.status_now}, godkjent {kroner(e.approved_ore_now)} kr{manual}",
        f"Merk: {e.history_note}",
    ]
    return "\n".join(out)


def explain_json(e: Explanation) -> dict[str, Any]:
    pid = e.bill.patient_id
    return {
        "bill": bill_json(e.bill),
        "then": {
            "ruleset_version": e.ruleset_then,
            "status": e.bill.status,
            "approved": decimal_kroner(e.bill.approved_ore),
            "findings": [stored_finding_json(f, pid) for f in e.stored_findings],
            "message_findings": [stored_finding_json(f, pid) for f in e.stored_message_findings],
        },
        "now": {
            "ruleset_version": e.ruleset_now,
            "same_ruleset": e.same_ruleset,
            "tariff_version": e.tariff_version,
            "practitioner_type": e.practitioner_type,
            "practitioner_id": e.practitioner_id,
            "received_at_local": e.received_at.isoformat(),
            "status": e.status_now,
            "approved": decimal_kroner(e.approved_ore_now),
            "manual": e.manual_now,
            "runs": [
                {
                    "on": "message" if r.on_message else "bill",
                    "rule_id": r.rule_id,
                    "rule_version": r.version,
                    "code": r.code,
                    "severity": r.severity.value,
                    "fired": r.fired,
                    "text": masked(r.text, pid) if r.text else None,
                    "facts": _masked_facts(r.facts, pid),
                }
                for r in e.runs
            ],
            "not_in_force": list(e.not_in_force),
        },
        "history_note": e.history_note,
    }


# --- rules replay -------------------------------------------------------------------------------


def _summaries(label: str, findings: Sequence[FindingSummary], patient_id: str) -> list[str]:
    return [f"      {label} {f.label}: {masked(f.text, patient_id)}" for f in findings]


def _change_text(c: ReplayChange) -> list[str]:
    b = c.bill
    out = [
        f"  regning {b.id}  RegningNr {b.regning_nr}  HER-id {b.sender_her}  "
        f"{_when(b.dato_tid)}:  {c.before_status} {kroner(c.before_ore)} kr -> "
        f"{c.after_status} {kroner(c.after_ore)} kr"
    ]
    out += _summaries("ny:", c.added, b.patient_id)
    out += _summaries("bortfalt:", c.removed, b.patient_id)
    if c.skipped:
        out.append(f"      IKKE ENDRET: {c.skipped}")
    elif c.override_id is not None:
        out.append(f"      lagret som rebehandling {c.override_id}")
    return out


def replay_text(r: ReplayReport) -> str:
    field_name = "mottatt" if r.by_received else "DatoTid"
    until = f" til {_when(r.until)}" if r.until else ""
    then = ", ".join(f"{v} ({n} regninger)" for v, n in r.rulesets_then.most_common()) or "-"
    head = (
        "Rebehandling (lagret)"
        if r.applied
        else "Rebehandling – forhåndsvisning: ingenting er endret (bruk --apply --by NAVN for å "
        "lagre endringene)"
    )
    out = [
        head,
        f"Utvalg: regninger med {field_name} fra {_when(r.since)}{until}: "
        f"{r.considered} regninger i {r.messages} meldinger",
        f"Regelsett nå: {r.ruleset_now}; vedtakene ble fattet med: {then}",
        "",
        f"Endret utfall: {len(r.changes)}",
    ]
    for c in r.changes:
        out += _change_text(c)
    if r.findings_only:
        out += ["", f"Samme utfall, andre merknader: {len(r.findings_only)}"]
        for c in r.findings_only:
            out += _change_text(c)
    if r.errors:
        out += ["", f"Feil: {len(r.errors)}"]
        out += [f"  melding {m}: {text}" for m, text in r.errors]
    summary = (
        f"Uendret: {r.unchanged}. Endret utfall: {len(r.changes)} (hoppet over: {len(r.skipped)}"
    )
    summary += f", lagret: {len(r.recorded)})." if r.applied else ")."
    out += ["", summary]
    return "\n".join(out)


def _summary_json(f: FindingSummary, patient_id: str) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "rule_version": f.version,
        "code": f.code,
        "severity": f.severity,
        "text": masked(f.text, patient_id),
        "facts": _masked_facts(f.facts, patient_id),
    }


def _change_json(c: ReplayChange) -> dict[str, Any]:
    pid = c.bill.patient_id
    return {
        "bill_id": c.bill.id,
        "regning_nr": c.bill.regning_nr,
        "sender_her": c.bill.sender_her,
        "guid": c.bill.guid,
        "dato_tid": c.bill.dato_tid.isoformat(),
        "before": {"status": c.before_status, "approved": decimal_kroner(c.before_ore)},
        "after": {"status": c.after_status, "approved": decimal_kroner(c.after_ore)},
        "added": [_summary_json(f, pid) for f in c.added],
        "removed": [_summary_json(f, pid) for f in c.removed],
        "skipped": c.skipped,
        "override_id": c.override_id,
    }


def replay_json(r: ReplayReport) -> dict[str, Any]:
    return {
        "applied": r.applied,
        "since": r.since.isoformat(),
        "until": r.until.isoformat() if r.until else None,
        "date_field": "received" if r.by_received else "treatment",
        "ruleset_now": r.ruleset_now,
        "rulesets_then": dict(r.rulesets_then),
        "considered": r.considered,
        "messages": r.messages,
        "unchanged": r.unchanged,
        "changes": [_change_json(c) for c in r.changes],
        "findings_only": [_change_json(c) for c in r.findings_only],
        "errors": [{"message_id": m, "error": text} for m, text in r.errors],
    }
