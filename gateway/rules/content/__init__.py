"""Rules on what a bill must carry: an identifiable patient, diagnoses in the code system of the
practice type, valid tooth codes, and the referral details some practitioners must give."""

from gateway.rules.base import Rule
from gateway.rules.content.diagnoses import WRONG_DIAGNOSIS_SYSTEM
from gateway.rules.content.patient_id import INVALID_PATIENT_ID
from gateway.rules.content.referrals import ORTHODONTIC_REFERRER, ORTHOPTIST_REFERRAL_ID
from gateway.rules.content.teeth import INVALID_TOOTH

RULES: tuple[Rule, ...] = (
    INVALID_PATIENT_ID,
    WRONG_DIAGNOSIS_SYSTEM,
    INVALID_TOOTH,
    ORTHODONTIC_REFERRER,
    ORTHOPTIST_REFERRAL_ID,
)
