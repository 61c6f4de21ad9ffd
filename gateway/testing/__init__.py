"""Test helpers shipped with the package (like ``structlog.testing``); never used by the daemon.

``gateway.testing.claims`` builds realistic, deterministic claim messages.
"""
