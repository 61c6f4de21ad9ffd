"""Dental rules: time requirements and overlapping start times (in force from 2020-10-01).

How much time a bill requires, and the assumptions behind it, is in ``timing``.
"""

from gateway.rules.base import Rule
from gateway.rules.dental.overlap_later_bill import OVERLAP_LATER_BILL
from gateway.rules.dental.repetition_per_day import REPETITION_PER_DAY
from gateway.rules.dental.same_start import SAME_START
from gateway.rules.dental.time_overlap import TIME_OVERLAP

RULES: tuple[Rule, ...] = (TIME_OVERLAP, SAME_START, OVERLAP_LATER_BILL, REPETITION_PER_DAY)
