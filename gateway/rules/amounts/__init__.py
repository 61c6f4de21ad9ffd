"""Amount rules: refund = honorar − egenandel unless exempt; claimed amounts must match."""

from gateway.rules.base import Rule

RULES: tuple[Rule, ...] = ()
