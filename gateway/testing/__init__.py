"""Test helpers shipped with the package (like ``structlog.testing``); never used by the daemon.

- ``gateway.testing.claims``: realistic, deterministic claims (MsgHead + BehandlerKrav).
- ``gateway.testing.messages``: whole ebXML MIME messages around a payload.
- ``gateway.testing.history``: an in-memory ``ClaimHistory`` and builders for rule tests.
- ``gateway.testing.pki``: a test CA and gateway/partner certificates, with options for expired,
  not-yet-valid, key usage and other-CA certificates.
- ``gateway.testing.cpa``: CPA files for tests (valid against cpp-cpa-2_0.xsd).
- ``gateway.testing.dovecot``: a real dovecot IMAP server in a temporary directory.
- ``gateway.testing.smtp_sink``: a real aiosmtpd SMTP server that records what it receives and
  can be stopped, restarted and told to answer 4xx/5xx.
"""
