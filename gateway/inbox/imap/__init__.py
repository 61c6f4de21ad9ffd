"""The IMAP inbox: claims taken from mailboxes, committed before they leave the folder.

- ``config``: ``[[imap.mailboxes]]``, one ``MailboxConfig`` per mailbox;
- ``protocol``: sequence sets and the parsing of replies (pure, tested without a server);
- ``session``: one connection (TLS/STARTTLS, LOGIN, SELECT, FETCH, MOVE), failures translated;
- ``poller``: the ``Inbox`` service per mailbox (passes, batches, IDLE, reconnect with backoff);
- ``tracking``: what the intake has seen, per mailbox and per mail.
"""

from gateway.inbox.imap.config import MailboxConfig, mailboxes_from
from gateway.inbox.imap.poller import MailboxPoller
from gateway.inbox.imap.protocol import message_id_of, uid_set
from gateway.inbox.imap.session import Session, abort_client, check_login
from gateway.inbox.imap.tracking import MailTracker

__all__ = [
    "MailTracker",
    "MailboxConfig",
    "MailboxPoller",
    "Session",
    "abort_client",
    "check_login",
    "mailboxes_from",
    "message_id_of",
    "uid_set",
]
