"""``gateway rules replay``: rebehandling of stored bills against the current rule set.

Every message holding a selected bill is rebuilt from its original bytes and evaluated again
(whole, as on intake, so bills of one message still see each other), against a history without
the message itself and later ones (``HistoryBefore``). Each selected bill's new outcome is
compared with its effective status (the latest override, else the decision). Nothing is written
unless ``apply``: then each changed outcome becomes a new ``overrides`` row of kind
``rebehandling`` (by ``rebehandling:<name>``, the reason naming the rules), never an edit of the
original decision or its findings.

Not applied (listed as skipped): bills a case worker has overridden by hand, credits and
credited bills, and approvals that would leave two approved originals with one Guid.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.casework.lookup import CaseworkError, kroner
from gateway.casework.overrides import MAX_BY, REPLAY_PREFIX
from gateway.casework.rerun import Environment, rerun_message
from gateway.records import CaseBill, StoredFinding, to_ore
from gateway.rules.base import Finding
from gateway.rules.engine import RuleEngine
from gateway.store import Store

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class FindingSummary:
    """A finding, stored or new, as replay reports it."""

    rule_id: str
    version: int
    code: str
    severity: str
    text: str
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.rule_id}@{self.version} ({self.code})"

    @classmethod
    def of_stored(cls, f: StoredFinding) -> FindingSummary:
        return cls(f.rule_id, f.rule_version, f.code, f.severity, f.text, dict(f.facts))

    @classmethod
    def of_new(cls, f: Finding) -> FindingSummary:
        return cls(f.rule_id, f.rule_version, f.code, f.severity.value, f.text, dict(f.facts))


@dataclass(frozen=True, slots=True)
class ReplayChange:
    """One bill whose outcome or findings differ when its message is evaluated now."""

    bill: CaseBill
    before_status: str  # effective status now
    before_ore: int
    after_status: str  # what the current rule set decides
    after_ore: int
    added: tuple[FindingSummary, ...]  # findings now that the original decision did not have
    removed: tuple[FindingSummary, ...]  # findings of the original decision that are gone
    skipped: str | None = None  # why the change is not applied
    override_id: int | None = None  # the rebehandling record, when applied

    @property
    def outcome_changed(self) -> bool:
        return (self.before_status, self.before_ore) != (self.after_status, self.after_ore)


@dataclass(slots=True)
class ReplayReport:
    """What a replay found (and, with ``applied``, recorded)."""

    ruleset_now: str
    since: datetime
    until: datetime | None
    by_received: bool
    applied: bool
    rulesets_then: Counter[str] = field(default_factory=Counter)
    considered: int = 0
    messages: int = 0
    unchanged: int = 0
    changes: list[ReplayChange] = field(default_factory=list)  # status or amount changes
    findings_only: list[ReplayChange] = field(default_factory=list)  # same outcome
    errors: list[tuple[int, str]] = field(default_factory=list)  # (message id, reason)

    @property
    def recorded(self) -> list[ReplayChange]:
        return [c for c in self.changes if c.override_id is not None]

    @property
    def skipped(self) -> list[ReplayChange]:
        return [c for c in self.changes if c.skipped is not None]


def replay(
    store: Store,
    *,
    since: datetime,
    until: datetime | None = None,
    by_received: bool = False,
    env: Environment | None = None,
    engine: RuleEngine | None = None,
    apply: bool = False,
    by: str | None = None,
    progress: Progress | None = None,
    at: datetime | None = None,
) -> ReplayReport:
    """Re-run the bills treated (DatoTid, naive local time) in ``[since, until)`` — or, with
    ``by_received``, received then (aware times) — against ``engine`` (default: ``env``'s, i.e.
    the registry's rules). With ``apply``, record each changed outcome as a rebehandling by
    ``by``; otherwise change nothing."""
    env = env or Environment()
    if engine is not None:
        env = replace(env, engine=engine)
    name = (by or "").strip()
    if apply and not name:
        raise CaseworkError("Rebehandling med --apply må si hvem som gjør den (--by).")
    if len(name) > MAX_BY:
        raise CaseworkError(f"Navnet kan være høyst {MAX_BY} tegn.")
    report = ReplayReport(
        ruleset_now=env.engine.version,
        since=since,
        until=until,
        by_received=by_received,
        applied=apply,
    )
    selected = store.casework.replay_bills(since, until, by_received=by_received)
    by_message: dict[int, list[int]] = {}
    for bill_id, message_id in selected:
        by_message.setdefault(message_id, []).append(bill_id)
    report.messages = len(by_message)
    done = 0
    for message_id, bill_ids in by_message.items():
        _replay_message(store, env, report, message_id, bill_ids, name if apply else None, at)
        done += len(bill_ids)
        if progress is not None:
            progress(done, len(selected))
    return report


def _replay_message(
    store: Store,
    env: Environment,
    report: ReplayReport,
    message_id: int,
    bill_ids: Sequence[int],
    apply_as: str | None,
    at: datetime | None,
) -> None:
    bills = {b.id: b for b in store.casework.message_bills(message_id)}
    first = bills[bill_ids[0]]
    try:
        rerun = rerun_message(
            store,
            message_id=message_id,
            received_id=first.received_id,
            received_at=first.received_at,
            env=env,
        )
    except CaseworkError as exc:
        report.errors.append((message_id, str(exc)))
        return
    stored = store.casework.findings(message_id)
    message_findings = [FindingSummary.of_new(f) for f in rerun.evaluation.message_findings]
    for bill_id in bill_ids:
        bill = bills[bill_id]
        report.considered += 1
        report.rulesets_then[bill.ruleset_version or "ukjent"] += 1
        decisions = rerun.evaluation.bills
        if bill.position >= len(decisions) or decisions[bill.position].bill.guid != bill.guid:
            report.errors.append(
                (message_id, f"regning {bill.id} finnes ikke på sin plass i meldingen")
            )
            continue
        decision = decisions[bill.position]
        before = [FindingSummary.of_stored(f) for f in stored if f.bill_id in (bill.id, None)]
        after = message_findings + [FindingSummary.of_new(f) for f in decision.findings]
        before_keys = {(f.rule_id, f.code) for f in before}
        after_keys = {(f.rule_id, f.code) for f in after}
        change = ReplayChange(
            bill=bill,
            before_status=bill.effective_status,
            before_ore=bill.effective_ore,
            after_status=decision.status.value,
            after_ore=to_ore(decision.approved_amount),
            added=tuple(f for f in after if (f.rule_id, f.code) not in before_keys),
            removed=tuple(f for f in before if (f.rule_id, f.code) not in after_keys),
        )
        if not change.outcome_changed:
            if change.added or change.removed:
                report.findings_only.append(change)
            else:
                report.unchanged += 1
            continue
        skipped = _why_not(store, change)
        if skipped is not None:
            change = replace(change, skipped=skipped)
        elif apply_as is not None:
            record = store.casework.record_override(
                bill.id,
                decision=change.after_status,
                amount_ore=change.after_ore,
                reason=_reason(change, report.ruleset_now),
                by=REPLAY_PREFIX + apply_as,
                kind="rebehandling",
                ruleset_version=report.ruleset_now,
                details=_details(change),
                at=at,
            )
            change = replace(change, override_id=record.id)
        report.changes.append(change)


def _why_not(store: Store, change: ReplayChange) -> str | None:
    bill = change.bill
    if bill.kreditering:
        return "kreditering: endres ikke ved rebehandling"
    if bill.credited_by is not None:
        return f"kreditert av regning {bill.credited_by}: endres ikke ved rebehandling"
    if bill.override_kind == "override":
        return f"overstyrt av saksbehandler (overstyring {bill.override_id}): endres ikke"
    if change.after_status == "godkjent":
        approvals = store.casework.effective_live_approvals(bill.sender_her, bill.guid)
        others = [i for i in approvals if i != bill.id]
        if others:
            return f"regning {others[0]} med samme Guid er allerede godkjent"
    return None


def _reason(change: ReplayChange, ruleset_now: str) -> str:
    then = change.bill.ruleset_version or "ukjent"
    parts = [
        f"Rebehandling med regelsett {ruleset_now} (vedtaket: regelsett {then}): "
        f"{change.before_status} {kroner(change.before_ore)} kr -> "
        f"{change.after_status} {kroner(change.after_ore)} kr."
    ]
    if change.added:
        parts.append("Nye merknader: " + ", ".join(f.label for f in change.added) + ".")
    if change.removed:
        parts.append("Bortfalt: " + ", ".join(f.label for f in change.removed) + ".")
    if not change.added and not change.removed:
        parts.append("Samme regler slo til; beløpet er endret.")
    return " ".join(parts)


def _details(change: ReplayChange) -> str:
    def as_dict(f: FindingSummary) -> dict[str, object]:
        return {
            "rule_id": f.rule_id,
            "rule_version": f.version,
            "code": f.code,
            "severity": f.severity,
            "text": f.text,
            "facts": f.facts,
        }

    return json.dumps(
        {
            "ruleset_then": change.bill.ruleset_version,
            "added": [as_dict(f) for f in change.added],
            "removed": [as_dict(f) for f in change.removed],
        },
        ensure_ascii=False,
        sort_keys=True,
    )
