"""The rules in the engine. Adding a rule: write its module, then add it to its family's
``RULES`` (``gateway/rules/<family>/__init__.py``) or, for a general rule, to ``GENERAL`` here."""

from __future__ import annotations

from gateway.rules import (
    amounts,
    content,
    deadlines,
    dental,
    eligibility,
    lab,
    practice,
    tariff,
    treatment,
)
from gateway.rules.base import Rule
from gateway.rules.credit_whole_bill import CREDIT_WHOLE_BILL
from gateway.rules.duplicate_bill import DUPLICATE_BILL
from gateway.rules.future_date import FUTURE_DATE
from gateway.rules.sums import ANTALL_REGNINGER, SUM_KRAV_SAMLET
from gateway.rules.unknown_practitioner import UNKNOWN_PRACTITIONER

GENERAL: tuple[Rule, ...] = (
    SUM_KRAV_SAMLET,
    ANTALL_REGNINGER,
    FUTURE_DATE,
    DUPLICATE_BILL,
    CREDIT_WHOLE_BILL,
    UNKNOWN_PRACTITIONER,
)

RULES: tuple[Rule, ...] = (
    *GENERAL,
    *practice.RULES,
    *content.RULES,
    *deadlines.RULES,
    *eligibility.RULES,
    *tariff.RULES,
    *amounts.RULES,
    *dental.RULES,
    *lab.RULES,
    *treatment.RULES,
)
