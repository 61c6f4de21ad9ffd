"""Eligibility rules: what must hold for a treatment to give a right to a refund."""

from gateway.rules.base import Rule
from gateway.rules.eligibility.referral_date import TREATMENT_BEFORE_REFERRAL
from gateway.rules.eligibility.referral_required import (
    PSYCHOLOGIST_REFERRAL,
    RIDING_THERAPY_REFERRAL,
)

RULES: tuple[Rule, ...] = (
    TREATMENT_BEFORE_REFERRAL,
    PSYCHOLOGIST_REFERRAL,
    RIDING_THERAPY_REFERRAL,
)
