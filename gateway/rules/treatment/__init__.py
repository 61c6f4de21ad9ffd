"""Treatment rules per profession, from the catalogue: takster that name each other (which may
stand together, how often in a session or a day, how many on a referral), not from the tariff
data. Each names its practitioner types and takster, so the engine only runs it on bills that
concern it; they need no tariff data (DAG_KVELD uses it to find the day/evening pairs), and the
legevakt whitelist needs the practice register to tell a legevakt from a fastlege.
"""

from gateway.rules.base import Rule
from gateway.rules.treatment.chiropractor import CHIROPRACTOR_COMBINATION
from gateway.rules.treatment.day_evening import DAY_EVENING_VARIANT
from gateway.rules.treatment.e_consultation import E_CONSULTATION_AT_LEGEVAKT
from gateway.rules.treatment.not_refunded import NOT_REFUNDED_TAKST
from gateway.rules.treatment.orthodontics import ONE_CONTROL_PER_SESSION
from gateway.rules.treatment.per_patient_day import ONE_TREATMENT_A_DAY
from gateway.rules.treatment.psychologist import EXAMINATION_ALONE, MEETING_ALONE
from gateway.rules.treatment.speech_therapy import SPEECH_COMBINATION
from gateway.rules.treatment.treatment_count import MORE_THAN_25

RULES: tuple[Rule, ...] = (
    E_CONSULTATION_AT_LEGEVAKT,
    NOT_REFUNDED_TAKST,
    DAY_EVENING_VARIANT,
    CHIROPRACTOR_COMBINATION,
    MEETING_ALONE,
    EXAMINATION_ALONE,
    SPEECH_COMBINATION,
    ONE_CONTROL_PER_SESSION,
    ONE_TREATMENT_A_DAY,
    MORE_THAN_25,
)
