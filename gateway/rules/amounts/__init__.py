"""Amount rules: refund = honorar − egenandel unless exempt; claimed amounts must match.

AMT-001 and AMT-002 need tariff data for the practitioner type; AMT-003 (exemption codes) needs
none and runs for every bill; AMT-004 (SumKrav against the lines) needs only the practitioner
type and stands aside where AMT-001 judges the sum; AMT-005 (no frikort at a chiropractor)
needs only the practitioner type.
"""

from gateway.rules.amounts.bill_sum import SUM_ABOVE_LINES
from gateway.rules.amounts.chiropractor_frikort import CHIROPRACTOR_FRIKORT
from gateway.rules.amounts.exemptions import WRONG_EXEMPTION
from gateway.rules.amounts.refund import REPETITION_REDUCTION, WRONG_AMOUNT
from gateway.rules.base import Rule

RULES: tuple[Rule, ...] = (
    WRONG_AMOUNT,
    REPETITION_REDUCTION,
    WRONG_EXEMPTION,
    SUM_ABOVE_LINES,
    CHIROPRACTOR_FRIKORT,
)
