"""``gateway health --config FILE [--json]``: every check the configured gateway depends on.

Exit code 0 when nothing failed (a warning, such as a certificate close to expiry, still passes),
1 otherwise, so a monitor or ``ExecStartPre`` can use it as it is.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable
from typing import Any

from cryptography import x509

from gateway.config import Config
from gateway.errors import ConfigurationError
from gateway.inbox.imap.config import mailboxes_from
from gateway.outbox.files import check_space
from gateway.outbox.smtp.config import SmtpConfig
from gateway.partners.registry import PartnerRegistry
from gateway.security.revocation.configured import revocation_config
from gateway.service import health
from gateway.settings import add_config_option
from gateway.store.migrations import SCHEMA_VERSION


def add_commands(sub: Any) -> None:
    """Add ``health`` to the ``gateway`` command."""
    parser = sub.add_parser("health", help="check database, mailboxes, SMTP and certificates")
    add_config_option(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int | None:
    """Run ``health`` if that is the command; None for any other command."""
    if args.command != "health":
        return None
    config = Config.from_toml(args.config)
    return asyncio.run(health.run_checks(checks_for(config), as_json=args.json))


async def _outbox_space(config: Config) -> health.Check:
    """Room for replies in the outbox directory: a full disk holds them in the database (and is
    retried), which ops must hear about before senders do."""
    space = await asyncio.to_thread(check_space, config.outbox.directory)
    status = health.Status.OK if space.ok else health.Status.FAIL
    return health.Check("outbox free space", status, space.detail)


def checks_for(config: Config) -> list[Awaitable[health.Check]]:
    """The checks for ``config``: database, directories, certificates, whether claims are
    authenticated, revocation, held payout decisions, mailboxes, SMTP."""
    warn = config.security.certificate_warn_days
    checks: list[Awaitable[health.Check]] = [
        health.check_database(config.database, expected_version=SCHEMA_VERSION),
        *(
            [health.check_directory_writable(config.database.path.parent)]
            if config.database.path is not None
            else []
        ),
        health.check_directory_writable(config.spool.directory),
        health.check_directory_writable(config.outbox.directory),
        _outbox_space(config),
        health.check_certificate(config.signing.cert_file, warn),
    ]
    for pair in config.security.decryption:
        checks.append(health.check_certificate(pair.cert_file, warn))
    checks += [
        health.check_authentication(config.partners.directory),
        health.check_revocation(revocation_config(config), _partner_certificates(config)),
        health.check_payout_held(config.database),
    ]
    for mailbox in mailboxes_from(config.table("imap")):
        checks.append(
            health.check_imap_login(
                mailbox.host,
                mailbox.port,
                mailbox.security,
                mailbox.user,
                mailbox.password(),
                mailbox.connect_timeout,
                cafile=str(mailbox.ca_file) if mailbox.ca_file else None,
            )
        )
    if config.outbox.kind == "smtp":
        smtp = SmtpConfig.from_table(config.table("outbox.smtp"))
        checks.append(
            health.check_smtp(
                smtp.host,
                smtp.port,
                smtp.security,
                smtp.user,
                smtp.password() if smtp.user else None,
                smtp.timeout,
                cafile=str(smtp.ca_file) if smtp.ca_file else None,
            )
        )
    return checks


def _partner_certificates(config: Config) -> tuple[x509.Certificate, ...]:
    """Every partner certificate of the CPAs (what revocation must cover); none if the
    partners directory cannot be read (the daemon refuses to start then, and says why)."""
    if config.partners.directory is None:
        return ()
    try:
        registry = PartnerRegistry.load(config.partners.directory)
    except ConfigurationError:
        return ()
    return registry.partner_certificates(config.identity.her_id)
