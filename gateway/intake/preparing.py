"""A worker's part: the pipeline for one message at a time, over a read-only snapshot of the store.

``Preparer.prepare`` runs every stage of ``Pipeline.process`` (unwrap, decrypt, verify, parse,
validate, rules, the signed answer) in one read transaction, then turns the result into the rows
its commit will write (``Prepared``): the writer only writes them. Before each message the tariff
data in force is checked (one cheap query), so an import applies without a restart.

``pipeline_for`` builds the pipeline from the configuration: the daemon's own (for the routing
of replies and the reload), and each worker's, alike.
"""

from __future__ import annotations

import time
from types import TracebackType

import structlog

from gateway.config import Config
from gateway.errors import MessageError, StorageError
from gateway.intake.conflicts import Reads
from gateway.intake.jobs import (
    Broken,
    BrokenKind,
    Committed,
    Job,
    Prepared,
    StageTime,
    WorkerResult,
)
from gateway.intake.snapshot import open_snapshot, snapshot_store
from gateway.logs import get_logger
from gateway.partners.registry import PartnerRegistry
from gateway.pipeline import Pipeline
from gateway.practices.live import LiveRegister
from gateway.processing import Signal, StageObserver
from gateway.receipts.options import ReplyOptions
from gateway.receipts.signing import reply_signing_of
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.security.certificates import RevocationCheck
from gateway.security.cms import DecryptionKey
from gateway.security.revocation import RevocationChecker, RevocationConfig
from gateway.security.revocation.crl import CrlCache
from gateway.security.revocation.issuers import Issuers
from gateway.security.xmldsig import load_signer
from gateway.store import Store
from gateway.tariffs.csv_format import TariffFileError
from gateway.tariffs.loading import load_book
from gateway.validation.catalog import SchemaCatalog

__all__ = ["Preparer", "pipeline_for", "revocation_checker"]

log = get_logger("daemon")


def pipeline_for(
    config: Config,
    store: Store,
    *,
    observe: StageObserver | None = None,
    replies: ReplyOptions | None = None,
    revocation: RevocationCheck | None = None,
) -> Pipeline:
    """The pipeline ``config`` describes, reading ``store`` (``replies``: ``[replies]``, read
    here when not given)."""
    partners = None
    if config.partners.directory is not None:
        partners = PartnerRegistry.load(config.partners.directory)
    return Pipeline(
        identity=config.identity,
        store=store,
        catalog=SchemaCatalog.default(extra_dirs=config.validation.official_schema_dirs),
        signer=load_signer(config.signing.key_file, config.signing.cert_file),
        engine=RuleEngine(RULES),
        max_message_bytes=config.validation.max_message_bytes,
        practices=LiveRegister(store.practices),
        partners=partners,
        decryption_keys=[
            DecryptionKey.from_files(pair.key_file, pair.cert_file)
            for pair in config.security.decryption
        ],
        security=config.security,
        observe=observe,
        replies=replies or ReplyOptions.from_table(config.table("replies")),
        revocation=revocation,
        reply_signing=reply_signing_of(config),
    )


def revocation_checker(config: Config) -> RevocationChecker | None:
    """A worker's own checker for ``[revocation]`` (None: not checked), over the on-disk CRL
    cache that the daemon's refresher keeps fresh (``CrlCache`` re-reads a file that changed)."""
    document = config.tables.data if config.tables is not None else {}
    found = RevocationConfig.from_toml(document, base=config.path.parent, source=str(config.path))
    if found is None:
        return None
    return RevocationChecker.from_config(
        found, CrlCache(found.cache_dir, Issuers.load(found.issuers_dir))
    )


class _StageClock:
    """Times each stage run into a list, as the metrics count them (sent to the daemon)."""

    __slots__ = ("_name", "_started", "outcome", "times")

    def __init__(self) -> None:
        self.times: list[StageTime] = []
        self._name = ""
        self._started = 0.0
        self.outcome = "ok"

    def __call__(self, name: str) -> _StageClock:
        self._name, self.outcome, self._started = name, "ok", time.perf_counter()
        return self

    def __enter__(self) -> _StageClock:
        return self

    def finished(self) -> None:
        self.outcome = "finished"

    def __exit__(
        self,
        kind: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            outcome = self.outcome
        elif issubclass(kind, MessageError):
            outcome = "rejected"
        elif issubclass(kind, Exception):
            outcome = "error"
        else:
            return
        self.times.append((self._name, outcome, time.perf_counter() - self._started))


class Preparer:
    """Processes one message at a time into a ``Prepared`` (see the module)."""

    def __init__(self, config: Config, *, observe_stages: bool = False) -> None:
        self.engine = open_snapshot(config.database)
        self.reads = Reads()
        self._clock = _StageClock() if observe_stages else None
        self.pipeline = pipeline_for(
            config,
            snapshot_store(self.engine, self.reads),
            observe=self._clock,
            revocation=revocation_checker(config),
        )
        self._tariff_version = ""

    def prepare(self, job: Job) -> WorkerResult:
        """Process ``job``; never raises (a bug of ours comes back as ``Broken``)."""
        with structlog.contextvars.bound_contextvars(source_ref=job.source_ref):
            try:
                return self._prepare(job)
            except StorageError as exc:
                log.exception("storage_error_reading")
                return Broken(BrokenKind.STORAGE, str(exc))
            except Exception as exc:
                # A bug of ours must not stop the daemon or lose the message: the daemon keeps
                # the bytes for a person and answers nothing we are not sure of.
                log.exception("message_failed", error=type(exc).__name__)
                return Broken(BrokenKind.ERROR, f"{type(exc).__name__}: {exc}"[:2000])

    def _prepare(self, job: Job) -> WorkerResult:
        started = time.perf_counter()
        self.reads.clear()
        if self._clock is not None:
            self._clock.times.clear()
        pipeline = self.pipeline
        with self.engine.snapshot() as snapshot:
            self.refresh_tariffs()
            if pipeline.store.intake.received_by_ref(job.source_ref) is not None:
                return Committed(job.source_ref)
            processed = pipeline.process(
                job.raw, source=job.source, source_ref=job.source_ref, source_name=job.source_name
            )
            rows = pipeline.rows(processed)  # reads the practice register: in the same snapshot
        exact, ranges = self.reads.frozen()
        ending, answer = processed.ending, processed.answer
        signal = ending if isinstance(ending, Signal) and ending.trusted else None
        return Prepared(
            rows=rows,
            snapshot=snapshot,
            read_exact=exact,
            read_ranges=ranges,
            outcome=answer.outcome,
            apprec_status=answer.apprec_status,
            reply_kinds=tuple(r.kind for r in answer.replies),
            detail=processed.detail,
            signal=None if signal is None else signal.message,
            signal_at=None if signal is None else processed.intake.received_at,
            stages=() if self._clock is None else tuple(self._clock.times),
            seconds=time.perf_counter() - started,
        )

    def refresh_tariffs(self) -> None:
        """Load the tariff data in force if a newer import exists (no restart needed)."""
        imports = self.pipeline.store.tariff_imports
        version = imports.version()
        if version == self._tariff_version:
            return
        try:
            book = load_book(imports)
        except TariffFileError as exc:
            # Keep deciding with the data in force rather than stop taking claims.
            log.error("tariffs_not_loaded", error=str(exc), kept=self._tariff_version or "none")
            self._tariff_version = version
            return
        self.pipeline.tariffs = book
        self._tariff_version = version
        if not book.takster and not book.nlk_codes:
            log.warning(
                "no_tariff_data",
                hint="tariff, amount, time and laboratory rules are inactive until "
                "`gateway tariffs import FILE...` has been run",
            )
        else:
            log.info(
                "tariffs_loaded",
                version=version,
                takster=len(book.takster),
                nlk_codes=len(book.nlk_codes),
                nlk_rates=len(book.nlk_rates),
            )

    def reload_partners(self) -> None:
        """Read the CPA directory again; a broken file keeps the registry in force."""
        partners = self.pipeline.partners
        if partners is None:
            return
        registry, problems = partners.reloaded()
        if not problems:
            self.pipeline.partners = registry

    def close(self) -> None:
        self.engine.close()
