"""Helpers for users of the package who build test traffic (like ``structlog.testing``).

Everything here imports only what a production install has, so an EPJ vendor, a tester or an
operator can build claims and messages with the gateway installed; the daemon never uses it.

- ``gateway.testing.claims``: realistic, deterministic claims (MsgHead + BehandlerKrav).
- ``gateway.testing.messages``: whole ebXML MIME messages around a payload (signed, gzipped,
  encrypted as a sender's MSH sends them), and ``open_reply`` to read our answers.
- ``gateway.testing.cpa``: CPA files for a partner (valid against cpp-cpa-2_0.xsd).
- ``gateway.testing.history``: an in-memory ``ClaimHistory`` and builders for rule tests.

The servers and certificates the project's own tests run against (dovecot, an SMTP sink, a test
CA, free ports) live in ``tests/support/``, beside the tests.
"""
