"""Test helpers shipped with the package (like ``structlog.testing``); never used by the daemon.

- ``gateway.testing.claims``: realistic, deterministic claims (MsgHead + BehandlerKrav).
- ``gateway.testing.messages``: whole ebXML MIME messages around a payload.
- ``gateway.testing.history``: an in-memory ``ClaimHistory`` and builders for rule tests.
"""
