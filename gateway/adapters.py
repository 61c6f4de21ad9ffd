"""Each adapter's settings, read from its own table of the config file, and checked together.

An adapter keeps its settings type beside its code (``inbox/imap/config.py``,
``outbox/smtp/config.py``, ``payout/config.py``, ``receipts/options.py``,
``security/revocation/config.py``, ``web/config.py``, ``deliveries/config.py``), read one way
with ``gateway.settings.Table``. ``Adapters.of`` collects them; ``load_config`` reads the core
configuration and every adapter's table at once, so a bad key anywhere stops a command before it
starts. ``gateway.wiring`` builds the running parts from these settings; the web console reads
them too (the mailboxes it probes, the payout it previews), which is why they live apart from the
building.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import Config
from gateway.deliveries.config import DeliveriesConfig
from gateway.inbox.imap.config import MailboxConfig, mailboxes_from
from gateway.intake.settings import IntakeSettings
from gateway.outbox.smtp.config import SmtpConfig
from gateway.payout.config import PayoutConfig
from gateway.receipts.options import ReplyOptions
from gateway.receipts.signing import reply_signing_of
from gateway.security.revocation.config import RevocationConfig
from gateway.security.revocation.configured import revocation_config
from gateway.web.config import WebConfig

#: The outboxes ``outbox.kind`` may name (``gateway.wiring.OUTBOXES`` builds each; a test keeps
#: the two alike).
OUTBOX_KINDS: tuple[str, ...] = ("file", "smtp")


@dataclass(frozen=True, slots=True)
class Adapters:
    """Each adapter's own settings, read from its table of the config file."""

    mailboxes: tuple[MailboxConfig, ...]
    smtp: SmtpConfig | None
    payout: PayoutConfig
    intake: IntakeSettings
    replies: ReplyOptions
    revocation: RevocationConfig | None
    #: The console and the claim status API (``gateway web``; in ``gateway run`` if in_daemon).
    web: WebConfig
    deliveries: DeliveriesConfig = field(default_factory=DeliveriesConfig)

    @classmethod
    def of(cls, config: Config) -> Adapters:
        """Read ``[[imap.mailboxes]]``, ``[outbox.smtp]`` (for ``outbox.kind = "smtp"``),
        ``[payout]``, ``[replies]``, ``[revocation]``, ``[web]``, ``[deliveries]``, the intake's
        keys of ``[daemon]`` and ``[signing] replies``; raise ``ConfigurationError`` naming the
        bad key."""
        outbox = config.table("outbox")
        kind = config.outbox.kind
        if kind not in OUTBOX_KINDS:
            supported = " or ".join(repr(k) for k in OUTBOX_KINDS)
            raise outbox.error(f"outbox.kind = {kind!r} is not supported ({supported})")
        smtp = None
        if kind == "smtp":
            if not isinstance(outbox.raw("smtp"), dict):
                raise outbox.error("outbox.kind = 'smtp' needs an [outbox.smtp] table")
            smtp = SmtpConfig.from_table(outbox.table("smtp"))
        reply_signing_of(config)  # checked here, used by the pipeline
        return cls(
            mailboxes=mailboxes_from(config.table("imap")),
            smtp=smtp,
            payout=PayoutConfig.from_table(config.table("payout")),
            intake=IntakeSettings.from_config(config),
            replies=ReplyOptions.from_table(config.table("replies")),
            revocation=revocation_config(config),
            web=WebConfig.from_table(config.table("web")),
            deliveries=DeliveriesConfig.from_table(config.table("deliveries")),
        )


def load_config(path: Path) -> Config:
    """Load ``path`` and check every adapter's table too: a bad key anywhere stops a command
    before it starts (``ConfigurationError``, exit code 78)."""
    config = Config.from_toml(path)
    Adapters.of(config)
    return config
