"""Deadlines and corrections: 6-month limit, credits within 3 years, duplicate treatments."""

from gateway.rules.base import Rule

RULES: tuple[Rule, ...] = ()
