"""Tariff rules: unknown codes, combinations, companions, repetitions, yearly limits, diagnosis.

Rules driven by the tariff book stand aside when the practitioner type is unknown or the book
has no takster for it (see ``support.tariff_view``); the rules with limits from the catalogue
itself (TAR-006 for lege, TAR-008 to TAR-011) need only the practitioner type, and so do the
catalogue's own combination, frequency and count rules (TAR-013 to TAR-021), which name their
takster themselves; TAR-013 also needs the practice register (fastlege or legevakt).
"""

from gateway.rules.base import Rule
from gateway.rules.tariff.combinations import INVALID_COMBINATION, MISSING_COMPANION
from gateway.rules.tariff.late_night_simple_contact import SIMPLE_CONTACT_AT_MIDNIGHT
from gateway.rules.tariff.repetitions import TOO_MANY_REPETITIONS
from gateway.rules.tariff.required_fields import MISSING_DIAGNOSIS, MISSING_PROCEDURE
from gateway.rules.tariff.simple_contact import SIMPLE_CONTACT_NEAR_CONSULTATION
from gateway.rules.tariff.unknown_code import UNKNOWN_TAKST
from gateway.rules.tariff.yearly_limits import (
    ENT_K02A_ONCE,
    PERIO_501_LIMIT,
    PSYCHOLOGIST_12_LIMIT,
    TARIFF_YEARLY_LIMIT,
)

RULES: tuple[Rule, ...] = (
    UNKNOWN_TAKST,
    INVALID_COMBINATION,
    MISSING_COMPANION,
    TOO_MANY_REPETITIONS,
    TARIFF_YEARLY_LIMIT,
    MISSING_DIAGNOSIS,
    MISSING_PROCEDURE,
    PERIO_501_LIMIT,
    PSYCHOLOGIST_12_LIMIT,
    ENT_K02A_ONCE,
    SIMPLE_CONTACT_NEAR_CONSULTATION,
    SIMPLE_CONTACT_AT_MIDNIGHT,
)
