"""What the project's tests and benchmarks run against; not shipped in the package.

- ``tests.support.dovecot``: a real dovecot IMAP server in a temporary directory.
- ``tests.support.smtp_sink``: a real aiosmtpd SMTP server that records what it receives and
  can be stopped, restarted and told to answer 4xx/5xx (aiosmtpd is a dev dependency).
- ``tests.support.pki``: a test CA and gateway/partner certificates, with options for expired,
  not-yet-valid, key usage and other-CA certificates.
- ``tests.support.net``: a free port on 127.0.0.1 and a self-signed localhost certificate.
- ``tests.support.mail_site``: a temporary gateway site (config, keys, CPAs) wired to dovecot
  and an SMTP sink, and the daemon run as its own process.

Import them as ``tests.support.<module>`` (the project root is on ``sys.path`` under pytest and
for ``python -m bench.<name>``).
"""
