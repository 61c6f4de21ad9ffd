"""Building ``gateway run`` from its configuration: every part, and the services that run.

``build(config)`` makes the store, the pipeline (schema catalog, signer, rule engine, partners,
decryption keys, the practice register in force, the ``[replies]`` options, the revocation
checker, metrics per stage), the intake, the outbox ``outbox.kind`` names, and the list of
services the daemon runs (``gateway.transports.Service``): the metrics endpoint, the outbox, the
inboxes (the spool and one poller per IMAP mailbox), the ack tracker, the CRL refresher (with
``[revocation]``), the payout scheduler, the web console (``[web] in_daemon``) and the systemd
watchdog. ``gateway.daemon`` only runs them.

Each adapter reads its own table of the config file, beside its code; ``gateway.adapters``
collects them (``Adapters.of``) and checks them all at load (``load_config``).

Adding a transport: write the adapter beside the others (an inbox in ``gateway/inbox/``
implementing ``transports.Inbox``, an outbox in ``gateway/outbox/`` implementing
``transports.Outbox``), its settings type beside it (read with ``gateway.settings.Table``), and
register it: its settings in ``gateway.adapters.Adapters``, here an inbox in ``_inboxes``, an
outbox in ``OUTBOXES`` under the name ``outbox.kind`` will use (and in ``OUTBOX_KINDS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from gateway.adapters import Adapters
from gateway.config import Config
from gateway.deliveries.schedule import DeliveryScheduler
from gateway.inbox.imap.poller import MailboxLeases, MailboxPoller
from gateway.inbox.imap.tracking import MailTracker
from gateway.inbox.spool import Spool
from gateway.inbox.spool_service import SpoolInbox
from gateway.intake import IntakeSettings, PipelineIntake
from gateway.intake.preparing import pipeline_for
from gateway.intake.workers import InThread, WorkerPool, Workers
from gateway.logs import get_logger
from gateway.outbox.files import FileOutbox
from gateway.outbox.reliability import AckTracker
from gateway.outbox.routing import Routing
from gateway.outbox.smtp.sender import SmtpOutbox
from gateway.payout.schedule import PayoutScheduler
from gateway.payout.sending import deps_from_config
from gateway.pipeline import STAGES, Pipeline
from gateway.practices.legacy import migrate_once
from gateway.processing import StageObserver
from gateway.security.revocation import Revocation, RevocationConfig
from gateway.service.health import days_to_expiry
from gateway.service.metrics import Metrics, MetricsEndpoint
from gateway.service.systemd import Watchdog
from gateway.store import Store
from gateway.transports import Inbox, Intake, Outbox, Service

log = get_logger("wiring")

# --- the parts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """What an adapter is built from."""

    config: Config
    adapters: Adapters
    store: Store
    routing: Routing


def _file_outbox(ctx: Context) -> tuple[Outbox, list[Service]]:
    return FileOutbox(ctx.store, ctx.config.outbox.directory), []


def _smtp_outbox(ctx: Context) -> tuple[Outbox, list[Service]]:
    assert ctx.adapters.smtp is not None  # Adapters.of requires [outbox.smtp]
    sender = SmtpOutbox(ctx.store, ctx.adapters.smtp, ctx.routing.resolve)
    # ebMS reliable messaging: resend unacknowledged messages per the partner's CPA.
    # (A file outbox has no partner on the other end to acknowledge anything.)
    acks = AckTracker(ctx.store, ctx.routing.policy_for, on_resend=sender.notify)
    return sender, [acks]


#: The outboxes ``outbox.kind`` may name: each builder gives the outbox and the services that
#: come with it.
OUTBOXES: dict[str, Callable[[Context], tuple[Outbox, list[Service]]]] = {
    "file": _file_outbox,
    "smtp": _smtp_outbox,
}


@dataclass(slots=True)
class Parts:
    """The parts of one ``gateway run``."""

    config: Config
    store: Store
    pipeline: Pipeline
    metrics: Metrics
    intake: PipelineIntake
    outbox: Outbox
    spool: SpoolInbox
    #: Everything the daemon runs, in the order they start.
    services: list[Service]
    tracker: MailTracker | None = None

    def close(self, *, wait: bool = True) -> None:
        """Stop the worker; with ``wait`` (after the message in hand), close the databases."""
        self.intake.close(wait=wait)
        self.metrics.stop_server()
        if wait:
            self.store.close()
            if self.tracker is not None:
                self.tracker.close()


def build(config: Config, *, once: bool = False) -> Parts:
    """Every part of ``gateway run`` for ``config`` (``once``: the spool inbox ends when empty)."""
    adapters = Adapters.of(config)
    store = Store(config.database)
    # The old [practitioners] table and receivers file: said at start, imported once if no
    # practice register has been imported yet.
    migrate_once(store.practices, config.practitioners, adapters.payout.receivers_file, config.path)
    metrics = Metrics()
    # The daemon's own pipeline: the partners it holds route the replies and are reloaded on
    # SIGHUP; the messages themselves are processed by the workers' pipelines (each with its own
    # revocation checker over the CRL cache this one's refresher keeps fresh).
    pipeline = build_pipeline(config, store, adapters, observe=metrics.observe_stages(STAGES))
    revocation = attach_revocation(adapters.revocation, pipeline)
    spool = Spool(config.spool, on_parked=metrics.spool_parked)
    routing = Routing(config.identity.her_id, lambda: pipeline.partners)
    ctx = Context(config, adapters, store, routing)
    outbox, outbox_services = OUTBOXES[config.outbox.kind](ctx)
    intake = _intake(config, adapters.intake, store, outbox, metrics, spool)
    spool_inbox = SpoolInbox(
        spool, intake, once=once, max_bytes=config.validation.max_message_bytes
    )
    tracker = MailTracker(store.engine) if adapters.mailboxes else None
    services: list[Service] = []
    if config.metrics.port:
        services.append(MetricsEndpoint(metrics, config.metrics.host, config.metrics.port))
    services += [outbox, *outbox_services, *_inboxes(ctx, intake, spool_inbox, tracker)]
    if revocation is not None:
        services.append(revocation.refresher)
    if adapters.payout.enabled:
        deps = deps_from_config(
            config,
            adapters.payout,
            practices=pipeline.practices,
            signer=pipeline.signer,
            partners=lambda: pipeline.partners,
        )
        services.append(
            PayoutScheduler(adapters.payout, store.engine, deps, flush=outbox.notify)
        )
    if adapters.deliveries.enabled:
        from gateway.stats.mirror import mirror_directory  # numpy only where it is used

        services.append(
            DeliveryScheduler(
                adapters.deliveries, store.engine, mirror=mirror_directory(config.database)
            )
        )
    if adapters.web.in_daemon:
        services.append(_web_service(config, adapters))
    services.append(Watchdog(intake.healthy))
    _register_gauges(metrics, config, spool, store)
    return Parts(config, store, pipeline, metrics, intake, outbox, spool_inbox, services, tracker)


def _inboxes(
    ctx: Context, intake: Intake, spool: SpoolInbox, tracker: MailTracker | None
) -> list[Inbox]:
    """The spool, then one poller per configured mailbox (sharing one mail tracker)."""
    inboxes: list[Inbox] = [spool]
    if tracker is not None:
        leases = MailboxLeases()  # shared: the instance takes its share of the mailboxes
        inboxes += [
            MailboxPoller(m, intake, tracker, leases=leases) for m in ctx.adapters.mailboxes
        ]
    return inboxes


def _intake(
    config: Config,
    settings: IntakeSettings,
    store: Store,
    outbox: Outbox,
    metrics: Metrics,
    spool: Spool,
) -> PipelineIntake:
    """The intake: ``settings.workers`` worker processes (or one thread for 0) and the writer.
    Stage times come back from the workers only when someone scrapes the metrics."""
    observe = config.metrics.port != 0
    workers: Workers
    alive: Callable[[], bool] = lambda: True  # noqa: E731 - the thread has no dispatcher
    if settings.workers == 0:
        workers = InThread(config, observe_stages=observe)
    else:
        pool = WorkerPool(
            config,
            size=settings.workers,
            budget=settings.message_budget_seconds,
            observe_stages=observe,
        )
        workers, alive = pool, pool.alive
    return PipelineIntake(
        store,
        outbox,
        metrics,
        workers,
        settings,
        observe_stages=observe,
        alive=alive,
        waiting=spool.incoming_count,
        # Replies as files are staged around each batch's commit (no second write of a row).
        files=outbox if isinstance(outbox, FileOutbox) else None,
    )


def _web_service(config: Config, adapters: Adapters) -> Service:
    """``[web] in_daemon = true``: the console and the status API served by the daemon."""
    # Imported here: the web stack (Starlette, uvicorn, Jinja2) is loaded only when it is served.
    from gateway.web.service import WebService

    return WebService(config, adapters)


def build_pipeline(
    config: Config,
    store: Store,
    adapters: Adapters | None = None,
    *,
    observe: StageObserver | None = None,
) -> Pipeline:
    """The pipeline ``gateway run`` uses, on ``store`` (``gateway validate --decide`` runs the
    same on a copy of the database; the intake's workers each build theirs alike, with
    ``gateway.intake.preparing.pipeline_for``); revocation is attached by ``build``."""
    adapters = adapters or Adapters.of(config)
    if config.partners.directory is None:
        # Fail closed is only possible with partners: say so at every start.
        log.warning(
            "claims_not_authenticated",
            reason="no partners.directory: no CPA, so no sender is checked and no signature "
            "verified; every claim is taken as it comes",
        )
    return pipeline_for(config, store, observe=observe, replies=adapters.replies)


def attach_revocation(config: RevocationConfig | None, pipeline: Pipeline) -> Revocation | None:
    """With ``[revocation]``: the checker for the pipeline and the CRL refresher for the daemon,
    over the partner certificates of the registry in force (reloads included)."""
    if config is None:
        return None
    our_her = pipeline.identity.her_id

    def certificates() -> tuple[x509.Certificate, ...]:
        registry = pipeline.partners
        return registry.partner_certificates(our_her) if registry is not None else ()

    revocation = Revocation.start(config, certificates)
    pipeline.revocation = revocation.checker
    return revocation

def _register_gauges(metrics: Metrics, config: Config, spool: Spool, store: Store) -> None:
    metrics.register_gauge("inbox_depth", lambda: float(spool.incoming_count()), inbox="spool")
    metrics.register_gauge("dead_letters", lambda: float(spool.parked_count()), kind="spool")
    summary = store.outbox.summary  # under the store's lock: safe from any thread
    metrics.register_gauge("oldest_pending_reply_age", lambda: summary().oldest_pending_seconds)
    metrics.register_gauge("outstanding_acks", lambda: float(summary().awaiting_ack))
    metrics.register_gauge("dead_letters", lambda: float(summary().dead), kind="reply")
    cert = config.signing.cert_file
    metrics.register_gauge(
        "certificate_expiry_days", lambda: days_to_expiry(cert), certificate="signing"
    )
