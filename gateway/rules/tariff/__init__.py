"""Tariff rules: unknown codes, combinations, companions, repetitions, yearly limits, diagnosis."""

from gateway.rules.base import Rule

RULES: tuple[Rule, ...] = ()
