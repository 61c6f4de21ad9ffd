"""Rules on who sent the claim, from the practice register: registered, registered on the
treatment date, under an avtale om direkte oppgjør and (physiotherapists) a driftsavtale,
specialty and surgery takster, egenandel-only senders, and known types without tariff data.

Each stands aside without an imported register (see ``common``), except EGENANDEL_REFUSJON
and UTEN_TAKSTDATA, which need only the practitioner type.
"""

from gateway.rules.base import Rule
from gateway.rules.practice.direct_settlement import NO_DIRECT_SETTLEMENT
from gateway.rules.practice.egenandel_only import EGENANDEL_ONLY_REFUND
from gateway.rules.practice.operating_agreement import NO_OPERATING_AGREEMENT
from gateway.rules.practice.practice_period import PRACTICE_NOT_VALID
from gateway.rules.practice.specialty_takster import SPECIALTY_TAKST
from gateway.rules.practice.surgery_takster import SURGERY_NEEDS_AGREEMENT
from gateway.rules.practice.uncovered_type import UNCOVERED_TYPE
from gateway.rules.practice.unknown_practice import UNKNOWN_PRACTICE

RULES: tuple[Rule, ...] = (
    UNKNOWN_PRACTICE,
    PRACTICE_NOT_VALID,
    NO_DIRECT_SETTLEMENT,
    NO_OPERATING_AGREEMENT,
    SURGERY_NEEDS_AGREEMENT,
    SPECIALTY_TAKST,
    EGENANDEL_ONLY_REFUND,
    UNCOVERED_TYPE,
)
