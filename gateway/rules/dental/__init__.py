"""Dental rules: time requirements and overlapping start times (in force from 2020-10-01)."""

from gateway.rules.base import Rule

RULES: tuple[Rule, ...] = ()
