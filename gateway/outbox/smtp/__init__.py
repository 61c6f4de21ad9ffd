"""The SMTP outbox: replies mailed over reused connections, retried, dead-lettered.

- ``config``: the ``[outbox.smtp]`` table (``SmtpConfig``);
- ``session``: one SMTP session and the translation of aiosmtplib's failures;
- ``sender``: the ``Outbox`` service (``SmtpOutbox``): passes, backoff, pauses, dead letters.
"""

from gateway.outbox.smtp.config import SmtpConfig
from gateway.outbox.smtp.sender import SmtpOutbox
from gateway.outbox.smtp.session import SmtpFailure, smtp_client

__all__ = ["SmtpConfig", "SmtpFailure", "SmtpOutbox", "smtp_client"]
