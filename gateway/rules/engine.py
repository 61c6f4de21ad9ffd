"""Runs the rules in force over a claim and turns what fired into decisions.

Bill rules run with the rules in force on the bill's treatment date (DatoTid), message rules with
those in force on the day the message was received. The engine knows nothing about any single
rule: it only reads ``Rule`` values from the registry it is given.

Dispatch is indexed: a rule that names its practitioner types and takst/NLK codes is only
considered for bills of those types that carry one of those codes, so the cost per bill grows
with the rules that concern it, not with the size of the rule set.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.claims.model import Enkeltregning
from gateway.rules.base import (
    BillCheck,
    ClaimContext,
    Finding,
    Hit,
    MessageCheck,
    Outcome,
    Rule,
    Scope,
    Severity,
)


class BillStatus(enum.Enum):
    GODKJENT = "godkjent"
    AVVIST = "avvist"


_REJECTING = (Severity.REJECT_BILL, Severity.REJECT_MESSAGE)


@dataclass(frozen=True, slots=True)
class BillDecision:
    """The outcome for one Enkeltregning."""

    index: int
    bill: Enkeltregning
    status: BillStatus
    approved_amount: Decimal  # what may be paid out (0 when avvist)
    findings: tuple[Finding, ...]
    manual: bool = False  # approved, but a case worker must look at it (kontrolleres manuelt)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything the engine decided about one claim message."""

    ruleset_version: str
    message_findings: tuple[Finding, ...]
    bills: tuple[BillDecision, ...]

    @property
    def message_rejected(self) -> bool:
        return any(f.severity is Severity.REJECT_MESSAGE for f in self.message_findings)

    @property
    def approved(self) -> tuple[BillDecision, ...]:
        return tuple(b for b in self.bills if b.status is BillStatus.GODKJENT)

    @property
    def rejected(self) -> tuple[BillDecision, ...]:
        return tuple(b for b in self.bills if b.status is BillStatus.AVVIST)


@dataclass(slots=True)
class Trace:
    """Which rules ran on which bill and whether they fired (for ``gateway rules explain``)."""

    runs: list[tuple[int | None, str, bool]] = field(default_factory=list)


def ruleset_version(rules: Sequence[Rule]) -> str:
    """A short, stable fingerprint of the rule set (ids and versions), stored with decisions."""
    digest = hashlib.sha256()
    for rule in sorted(rules, key=lambda r: r.id):
        digest.update(f"{rule.id}@{rule.version};".encode())
    return digest.hexdigest()[:12]


@dataclass(slots=True)
class _Earlier:
    bills: list[Enkeltregning] = field(default_factory=list)

    def approved(self) -> Sequence[Enkeltregning]:
        return self.bills


@dataclass(frozen=True, slots=True)
class _Bucket:
    """The bill rules for one practitioner type: those for every bill, and those by code."""

    general: tuple[tuple[int, Rule], ...]
    by_code: dict[str, tuple[tuple[int, Rule], ...]]


class RuleEngine:
    """Evaluates a claim against a fixed set of rules."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        ids = [r.id for r in rules]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"duplicate rule ids: {sorted(duplicates)}")
        self.rules = tuple(rules)
        self.version = ruleset_version(rules)
        self._message_rules = tuple(r for r in rules if r.scope is Scope.MESSAGE)
        bill_rules = [(i, r) for i, r in enumerate(rules) if r.scope is Scope.BILL]
        types: set[str | None] = {None}
        for _, rule in bill_rules:
            types.update(rule.practitioners or ())
        self._buckets = {t: self._bucket(bill_rules, t) for t in types}

    @staticmethod
    def _bucket(bill_rules: list[tuple[int, Rule]], practitioner: str | None) -> _Bucket:
        general: list[tuple[int, Rule]] = []
        by_code: dict[str, list[tuple[int, Rule]]] = {}
        for position, rule in bill_rules:
            if rule.practitioners is not None and practitioner not in rule.practitioners:
                continue
            if rule.codes is None:
                general.append((position, rule))
            else:
                for code in rule.codes:
                    by_code.setdefault(code.lower(), []).append((position, rule))
        return _Bucket(tuple(general), {c: tuple(v) for c, v in by_code.items()})

    def rules_for(self, bill: Enkeltregning, practitioner: str | None) -> list[Rule]:
        """The bill rules that concern this bill, in registry order (before date filtering)."""
        bucket = self._buckets.get(practitioner) or self._buckets[None]
        if not bucket.by_code:
            return [rule for _, rule in bucket.general]
        chosen = dict(bucket.general)
        for takst in bill.behandling.takster:
            for position, rule in bucket.by_code.get(takst.kode.lower(), ()):
                chosen[position] = rule
        return [chosen[p] for p in sorted(chosen)]

    def evaluate(self, ctx: ClaimContext, *, trace: Trace | None = None) -> Evaluation:
        received_on = ctx.received_at.date()
        message_findings: list[Finding] = []
        for rule in self._message_rules:
            if not rule.in_force(received_on) or not _applies(rule, ctx.practitioner):
                continue
            check: MessageCheck = rule.check  # type: ignore[assignment]
            hit = _as_hit(check(ctx))
            if trace is not None:
                trace.runs.append((None, rule.id, hit is not None))
            if hit is not None:
                message_findings.append(_finding(rule, hit, None, None))
        message_rejected = any(f.severity is Severity.REJECT_MESSAGE for f in message_findings)

        earlier = _Earlier()
        ctx = dataclasses.replace(ctx, earlier=earlier)
        decisions: list[BillDecision] = []
        for index, bill in enumerate(ctx.krav.regninger):
            decision = self._decide_bill(ctx, index, bill, message_rejected, trace)
            if decision.status is BillStatus.GODKJENT:
                earlier.bills.append(bill)
            decisions.append(decision)
        return Evaluation(
            ruleset_version=self.version,
            message_findings=tuple(message_findings),
            bills=tuple(decisions),
        )

    def _decide_bill(
        self,
        ctx: ClaimContext,
        index: int,
        bill: Enkeltregning,
        message_rejected: bool,
        trace: Trace | None,
    ) -> BillDecision:
        findings: list[Finding] = []
        treated_on = bill.dato_tid.date()
        for rule in self.rules_for(bill, ctx.practitioner):
            if not rule.in_force(treated_on):
                continue
            bill_check: BillCheck = rule.check  # type: ignore[assignment]
            hit = _as_hit(bill_check(bill, index, ctx))
            if trace is not None:
                trace.runs.append((index, rule.id, hit is not None))
            if hit is not None:
                findings.append(_finding(rule, hit, index, bill.regning_nr))
        rejected = message_rejected or any(f.severity in _REJECTING for f in findings)
        amount = bill.behandling.sum_refusjon
        for finding in findings:
            if finding.severity is Severity.ADJUST and finding.approved_amount is not None:
                amount = min(amount, finding.approved_amount)
        return BillDecision(
            index=index,
            bill=bill,
            status=BillStatus.AVVIST if rejected else BillStatus.GODKJENT,
            approved_amount=Decimal("0.00") if rejected else amount,
            findings=tuple(findings),
            manual=not rejected and any(f.severity is Severity.MANUAL for f in findings),
        )


def _applies(rule: Rule, practitioner: str | None) -> bool:
    return rule.practitioners is None or practitioner in rule.practitioners


def _as_hit(outcome: Outcome) -> Hit | None:
    if outcome is None or isinstance(outcome, Hit):
        return outcome
    return Hit(facts=outcome)


def _finding(rule: Rule, hit: Hit, index: int | None, regning_nr: str | None) -> Finding:
    facts = dict(hit.facts)
    return Finding(
        rule_id=rule.id,
        rule_version=rule.version,
        code=rule.code,
        text=rule.explain(facts),
        severity=rule.severity,
        bill_index=index,
        regning_nr=regning_nr,
        facts=facts,
        approved_amount=hit.approved_amount,
    )
