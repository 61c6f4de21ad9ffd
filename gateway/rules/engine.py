"""Runs the rules in force over a claim and turns what fired into decisions.

Bill rules run with the rules in force on the bill's treatment date (DatoTid), message rules with
those in force on the day the message was received. The engine knows nothing about any single
rule: it only reads ``Rule`` values from the registry it is given.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from gateway.claims.model import Enkeltregning
from gateway.rules.base import (
    BillCheck,
    ClaimContext,
    Facts,
    Finding,
    MessageCheck,
    Rule,
    Scope,
    Severity,
)


class BillStatus(enum.Enum):
    GODKJENT = "godkjent"
    AVVIST = "avvist"


@dataclass(frozen=True, slots=True)
class BillDecision:
    """The outcome for one Enkeltregning."""

    index: int
    bill: Enkeltregning
    status: BillStatus
    approved_amount: Decimal  # what may be paid out (0 when avvist)
    findings: tuple[Finding, ...]


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


def ruleset_version(rules: Sequence[Rule]) -> str:
    """A short, stable fingerprint of the rule set (ids and versions), stored with decisions."""
    digest = hashlib.sha256()
    for rule in sorted(rules, key=lambda r: r.id):
        digest.update(f"{rule.id}@{rule.version};".encode())
    return digest.hexdigest()[:12]


class RuleEngine:
    """Evaluates a claim against a fixed set of rules."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        ids = [r.id for r in rules]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"duplicate rule ids: {sorted(duplicates)}")
        self._message_rules = tuple(r for r in rules if r.scope is Scope.MESSAGE)
        self._bill_rules = tuple(r for r in rules if r.scope is Scope.BILL)
        self.rules = tuple(rules)
        self.version = ruleset_version(rules)

    def evaluate(self, ctx: ClaimContext) -> Evaluation:
        received_on = ctx.received_at.date()
        message_findings: list[Finding] = []
        for rule in self._message_rules:
            if not rule.in_force(received_on):
                continue
            check: MessageCheck = rule.check  # type: ignore[assignment]
            facts = check(ctx)
            if facts is not None:
                message_findings.append(_finding(rule, facts, None, None))
        message_rejected = any(
            f.severity is Severity.REJECT_MESSAGE for f in message_findings
        )

        decisions: list[BillDecision] = []
        for index, bill in enumerate(ctx.krav.regninger):
            findings: list[Finding] = []
            treated_on = bill.dato_tid.date()
            for rule in self._bill_rules:
                if not rule.in_force(treated_on):
                    continue
                bill_check: BillCheck = rule.check  # type: ignore[assignment]
                facts = bill_check(bill, index, ctx)
                if facts is not None:
                    findings.append(_finding(rule, facts, index, bill.regning_nr))
            rejected = message_rejected or any(
                f.severity in (Severity.REJECT_BILL, Severity.REJECT_MESSAGE) for f in findings
            )
            decisions.append(
                BillDecision(
                    index=index,
                    bill=bill,
                    status=BillStatus.AVVIST if rejected else BillStatus.GODKJENT,
                    approved_amount=(
                        Decimal("0.00") if rejected else bill.behandling.sum_refusjon
                    ),
                    findings=tuple(findings),
                )
            )
        return Evaluation(
            ruleset_version=self.version,
            message_findings=tuple(message_findings),
            bills=tuple(decisions),
        )


def _finding(rule: Rule, facts: Facts, index: int | None, regning_nr: str | None) -> Finding:
    mapping = dict(facts)
    return Finding(
        rule_id=rule.id,
        rule_version=rule.version,
        code=rule.code,
        text=rule.explain(mapping),
        severity=rule.severity,
        bill_index=index,
        regning_nr=regning_nr,
        facts=mapping,
    )
