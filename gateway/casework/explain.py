"""``gateway rules explain``: which rules ran on a bill, which fired and with what inputs.

The claim is rebuilt from the stored original bytes and evaluated again with a ``Trace``, with
today's rule set and tariffs, next to the findings stored with the original decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from gateway.casework.lookup import CaseworkError
from gateway.casework.rerun import Environment, rerun_message
from gateway.clock import local_naive
from gateway.records import CaseBill, StoredFinding, to_ore
from gateway.rules.base import Finding, Severity
from gateway.rules.engine import Trace
from gateway.store import Store

HISTORY_NOTE = (
    "Regler som ser på historikk (duplikater, tidsoverlapp, årsgrenser) er vurdert mot "
    "lagrede vedtak slik de står nå, for regninger mottatt før denne meldingen (meldingen "
    "selv er holdt utenfor; overstyringer telles ikke). Svaret gjelder per nå og kan avvike "
    "fra situasjonen da vedtaket ble fattet."
)


@dataclass(frozen=True, slots=True)
class RuleRun:
    """One rule the engine ran now, on the message or on this bill."""

    on_message: bool
    rule_id: str
    version: int
    code: str
    severity: Severity
    fired: bool
    text: str | None = None  # the finding's text, when fired
    facts: Mapping[str, str] = field(default_factory=dict)  # the rule's inputs, when fired


@dataclass(frozen=True, slots=True)
class Explanation:
    """The original decision on a bill next to a traced evaluation of it now."""

    bill: CaseBill
    stored_findings: tuple[StoredFinding, ...]
    stored_message_findings: tuple[StoredFinding, ...]
    ruleset_now: str
    practitioner_type: str | None
    practitioner_id: str
    received_at: datetime  # naive Norwegian local time, as the rules saw it
    tariff_version: str
    runs: tuple[RuleRun, ...]  # message rules first, then the bill's, in the order they ran
    not_in_force: tuple[str, ...]  # rules for this bill not in force on its DatoTid
    status_now: str
    approved_ore_now: int
    manual_now: bool
    history_note: str = HISTORY_NOTE

    @property
    def ruleset_then(self) -> str | None:
        return self.bill.ruleset_version

    @property
    def same_ruleset(self) -> bool:
        return self.ruleset_then == self.ruleset_now


def explain(store: Store, bill: CaseBill, env: Environment | None = None) -> Explanation:
    """Evaluate ``bill``'s message again with a trace and collect what concerns ``bill``."""
    env = env or Environment()
    trace = Trace()
    rerun = rerun_message(
        store,
        message_id=bill.message_id,
        received_id=bill.received_id,
        received_at=bill.received_at,
        env=env,
        trace=trace,
    )
    decisions = rerun.evaluation.bills
    if bill.position >= len(decisions) or decisions[bill.position].bill.guid != bill.guid:
        raise CaseworkError(
            f"Regning {bill.id} finnes ikke på plass {bill.position} i den lagrede meldingen."
        )
    decision = decisions[bill.position]
    rules = {rule.id: rule for rule in env.engine.rules}
    fired: dict[tuple[bool, str], Finding] = {
        (True, f.rule_id): f for f in rerun.evaluation.message_findings
    }
    fired.update({(False, f.rule_id): f for f in decision.findings})
    runs: list[RuleRun] = []
    for index, rule_id, hit in trace.runs:
        if index is not None and index != bill.position:
            continue
        rule = rules[rule_id]
        finding = fired.get((index is None, rule_id)) if hit else None
        runs.append(
            RuleRun(
                on_message=index is None,
                rule_id=rule_id,
                version=rule.version,
                code=rule.code,
                severity=rule.severity,
                fired=hit,
                text=finding.text if finding else None,
                facts=dict(finding.facts) if finding else {},
            )
        )
    runs.sort(key=lambda r: not r.on_message)  # stable: message rules first
    treated_on = decision.bill.dato_tid.date()
    not_in_force = tuple(
        r.id
        for r in env.engine.rules_for(decision.bill, rerun.context.practitioner)
        if not r.in_force(treated_on)
    )
    stored = store.casework.findings(bill.message_id)
    return Explanation(
        bill=bill,
        stored_findings=tuple(f for f in stored if f.bill_id == bill.id),
        stored_message_findings=tuple(f for f in stored if f.bill_id is None),
        ruleset_now=rerun.evaluation.ruleset_version,
        practitioner_type=rerun.context.practitioner,
        practitioner_id=rerun.context.practitioner_id,
        received_at=local_naive(bill.received_at),
        tariff_version=env.tariffs.version,
        runs=tuple(runs),
        not_in_force=not_in_force,
        status_now=decision.status.value,
        approved_ore_now=to_ore(decision.approved_amount),
        manual_now=decision.manual,
    )
