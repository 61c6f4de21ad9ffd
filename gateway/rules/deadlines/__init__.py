"""Deadlines and corrections: 6-month limit, credits within 3 years, duplicate treatments.

Related rules kept with the general ones: DATE-766 (no date in the future,
``gateway.rules.future_date``), DUP-001 (same Guid again, ``gateway.rules.duplicate_bill``) and
CRED-001 (credits only of whole bills, ``gateway.rules.credit_whole_bill``).
"""

from gateway.rules.base import Rule
from gateway.rules.deadlines.duplicate_treatment import DUPLICATE_TREATMENT
from gateway.rules.deadlines.egenandel_reporting import EGENANDEL_REPORTING
from gateway.rules.deadlines.late_claim import LATE_CLAIM
from gateway.rules.deadlines.old_credit import OLD_CREDIT

RULES: tuple[Rule, ...] = (LATE_CLAIM, OLD_CREDIT, DUPLICATE_TREATMENT, EGENANDEL_REPORTING)
