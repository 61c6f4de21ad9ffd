"""``gateway rules list``: the rules in force on a day, with what they are and where from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from gateway.rules.base import Rule, Scope, Severity
from gateway.rules.codes import MERKNADER_LIST, CodeList, RuleCode, shipped_code_list

#: Norwegian names of what a fired rule does.
SEVERITY_LABELS = {
    Severity.REJECT_MESSAGE: "avvis melding",
    Severity.REJECT_BILL: "avvis regning",
    Severity.ADJUST: "juster beløp",
    Severity.MANUAL: "manuell kontroll",
    Severity.WARNING: "merknad",
}
GENERAL = "generell"
_RULES_PACKAGE = "gateway.rules."


def severity_label(severity: str) -> str:
    """The Norwegian label of a stored severity value."""
    for member, label in SEVERITY_LABELS.items():
        if member.value == severity:
            return label
    return severity


def family_of(rule: Rule) -> str:
    """The rule family: the ``gateway/rules/<family>/`` package its check lives in;
    ``generell`` for modules directly in ``gateway/rules/``, else the module name."""
    module = getattr(rule.check, "__module__", "") or ""
    if module.startswith(_RULES_PACKAGE):
        parts = module[len(_RULES_PACKAGE) :].split(".")
        return parts[0] if len(parts) > 1 else GENERAL
    return module or GENERAL


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One rule as ``gateway rules list`` shows it."""

    id: str
    version: int
    family: str
    code: str
    severity: Severity
    scope: Scope
    practitioners: tuple[str, ...] | None  # None: every practitioner type
    codes: tuple[str, ...] | None  # None: every bill
    valid_from: date
    valid_to: date | None
    basis: str
    text: str
    guidance: str
    #: The code an AppRec ``Error`` carries for the rule (None: not in the code list).
    apprec_code: RuleCode | None = None

    @property
    def shown_code(self) -> str:
        """``766``, ``9001 (DUPLIKAT)``, ``8221 X99 (SUMKRAV)``; flagged when not listed."""
        code = self.apprec_code
        if code is None:
            return f"{self.code} (mangler i kodeverket)"
        value = code.value if code.code_list == MERKNADER_LIST else f"{code.code_list} {code.value}"
        return value if value == self.code else f"{value} ({self.code})"

    @classmethod
    def of(cls, rule: Rule, codes: CodeList | None = None) -> RuleInfo:
        return cls(
            id=rule.id,
            version=rule.version,
            family=family_of(rule),
            code=rule.code,
            severity=rule.severity,
            scope=rule.scope,
            practitioners=None if rule.practitioners is None else tuple(sorted(rule.practitioners)),
            codes=None if rule.codes is None else tuple(sorted(rule.codes)),
            valid_from=rule.valid_from,
            valid_to=rule.valid_to,
            basis=rule.basis,
            text=rule.text,
            guidance=rule.guidance,
            apprec_code=_apprec_code(rule, codes or shipped_code_list()),
        )


def _apprec_code(rule: Rule, codes: CodeList) -> RuleCode | None:
    try:
        return codes.code_of(rule)
    except LookupError:
        return None  # shown as missing; the daemon refuses to start with such a rule


def families(rules: Sequence[Rule]) -> list[str]:
    """Every family among ``rules``, sorted."""
    return sorted({family_of(r) for r in rules})


def rules_in_force(rules: Sequence[Rule], on: date, family: str | None = None) -> list[RuleInfo]:
    """The rules in force on ``on`` (optionally of one family), by family and id."""
    chosen = [
        RuleInfo.of(rule)
        for rule in rules
        if rule.in_force(on) and (family is None or family_of(rule) == family.lower())
    ]
    return sorted(chosen, key=lambda r: (r.family, r.id))


def abbreviate(codes: Sequence[str] | None, limit: int = 6) -> str:
    """``2ad, 2cd, … (+12)``; ``alle`` for None."""
    if codes is None:
        return "alle"
    if len(codes) <= limit:
        return ", ".join(codes)
    return ", ".join(codes[:limit]) + f", … (+{len(codes) - limit})"
