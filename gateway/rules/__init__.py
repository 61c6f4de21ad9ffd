"""Claim control rules: data plus small check functions, run by ``engine.RuleEngine``."""
