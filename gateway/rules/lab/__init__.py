"""Laboratory rules on NLK codes: validity, rates by refusjonskategori, stars, genetics."""

from gateway.rules.base import Rule

RULES: tuple[Rule, ...] = ()
