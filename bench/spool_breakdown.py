"""Where the spool benchmark's time goes, measured on a sample of its messages in this thread.

- ``measure_floor``: the unavoidable work (MIME unwrap, payload parse, schema validation, one
  signed AppRec), the floor no gateway can go below.
- ``measure_handle``: ``Pipeline.handle`` alone, with its SQLite commit, on a fresh store.
- ``measure_stages``: the daemon's per-message work (``Daemon._process``) one timed step at a
  time, through the pipeline's stage observer.
- ``measure_fsync``: one durable small-file write on this disk, the outbox's way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import Timings
from bench.floor import signed_ok_apprec
from gateway.claims.model import MsgHead
from gateway.clock import local_naive, utc_now
from gateway.config import Config, IdentityConfig, SpoolConfig
from gateway.ebxml import mime
from gateway.inbox.spool import BATCH, Spool
from gateway.outbox.files import FileOutbox
from gateway.pipeline import Pipeline
from gateway.processing import StageRun
from gateway.records import Outcome
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.security.xmldsig import Signer
from gateway.store import Store
from gateway.validation.catalog import SchemaCatalog
from gateway.validation.safe_xml import parse_xml

FSYNC_PROBES = 50


@dataclass(frozen=True, slots=True)
class Sample:
    """A generated message kept in memory for the in-process measurements."""

    name: str
    raw: bytes
    head: MsgHead


def measure_floor(
    samples: Sequence[Sample], catalog: SchemaCatalog, signer: Signer, identity: IdentityConfig
) -> tuple[list[float], Timings]:
    """Unavoidable work: MIME unwrap, payload parse, schema validation, one signed AppRec."""
    us = identity.organisation()
    parts = Timings()
    totals: list[float] = []
    for sample in samples:
        t0 = time.perf_counter()
        package = mime.unwrap(sample.raw)
        payload = package.attachments[0].body
        t1 = time.perf_counter()
        root = parse_xml(payload)
        t2 = time.perf_counter()
        report = catalog.validate(root)
        t3 = time.perf_counter()
        if not report.valid:
            raise RuntimeError(f"generated message {sample.name} is not schema-valid: {report}")
        now = local_naive(utc_now()).replace(microsecond=0)
        head = sample.head  # known from generation: the floor does not even read the MsgHead
        signed_ok_apprec(head, us, signer, now)
        t4 = time.perf_counter()
        parts.add("mime.unwrap", t1 - t0)
        parts.add("parse_xml (payload)", t2 - t1)
        parts.add("catalog.validate", t3 - t2)
        parts.add("build + sign + serialise AppRec", t4 - t3)
        totals.append(t4 - t0)
    return totals, parts


def _pipeline(config: Config, store: Store, catalog: SchemaCatalog, signer: Signer) -> Pipeline:
    return Pipeline(
        identity=config.identity,
        store=store,
        catalog=catalog,
        signer=signer,
        engine=RuleEngine(RULES),
        max_message_bytes=config.validation.max_message_bytes,
    )


def measure_handle(
    samples: Sequence[Sample],
    directory: Path,
    config: Config,
    catalog: SchemaCatalog,
    signer: Signer,
) -> list[float]:
    """``Pipeline.handle`` alone (with its SQLite commit), on a fresh store: no files."""
    directory.mkdir(parents=True)
    store = Store(directory / "gateway.sqlite3")
    pipeline = _pipeline(config, store, catalog, signer)
    totals: list[float] = []
    try:
        for i, sample in enumerate(samples):
            t0 = time.perf_counter()
            result = pipeline.handle(
                sample.raw, source="spool", source_ref=f"handle-{i}", source_name=sample.name
            )
            totals.append(time.perf_counter() - t0)
            if result.outcome is not Outcome.ACCEPTED:
                raise RuntimeError(f"{sample.name}: {result.outcome} ({result.detail})")
    finally:
        store.close()
    return totals


def measure_stages(
    samples: Sequence[Sample],
    directory: Path,
    config: Config,
    catalog: SchemaCatalog,
    signer: Signer,
) -> Timings:
    """The daemon's per-message work (``Daemon._process``), one timed step at a time.

    Same calls in the same order, on a fresh spool, store and outbox, in this thread (no event
    loop, no worker handoff). ``Pipeline.handle`` is split into ``process`` (each stage timed
    through the pipeline's stage observer) and ``commit``.
    """
    spool = Spool(
        SpoolConfig(
            directory=directory / "spool",
            poll_interval=1.0,
            max_recoveries=3,
            settle_seconds=0.0,
        )
    )
    store = Store(directory / "gateway.sqlite3")
    outbox = FileOutbox(store, directory / "outbox")
    pipeline = _pipeline(config, store, catalog, signer)
    stage_times: list[tuple[str, float]] = []

    @contextmanager
    def timed(name: str) -> Iterator[StageRun]:
        started = time.perf_counter()
        yield _Run()
        stage_times.append((name, time.perf_counter() - started))

    pipeline.observe = timed
    for sample in samples:
        (spool.config.incoming / sample.name).write_bytes(sample.raw)
    parts = Timings()
    try:
        while True:
            t = time.perf_counter()
            batch = spool.claim(BATCH)
            if not batch:
                break
            per_item = (time.perf_counter() - t) / len(batch)
            for item in batch:
                parts.add("spool.claim (batched, per message)", per_item)
                t = time.perf_counter()
                store.intake.received_by_ref(item.source_ref)
                t, t0 = time.perf_counter(), t
                parts.add("store.intake.received_by_ref", t - t0)
                raw = item.path.read_bytes()
                t, t0 = time.perf_counter(), t
                parts.add("read file", t - t0)
                processed = pipeline.process(
                    raw, source="spool", source_ref=item.source_ref, source_name=item.original_name
                )
                t, t0 = time.perf_counter(), t
                for name, seconds in stage_times:
                    parts.add(f"pipeline.{name}", seconds)
                answer = (t - t0) - sum(seconds for _, seconds in stage_times)
                stage_times.clear()
                parts.add("pipeline: sha256 + answer (ack + signed AppRec)", answer)
                if processed.answer.outcome is not Outcome.ACCEPTED:
                    raise RuntimeError(f"{item.original_name}: {processed.answer.outcome}")
                pipeline.commit(processed)
                t, t0 = time.perf_counter(), t
                parts.add("store.intake.commit (SQLite, synchronous=FULL)", t - t0)
                outbox.flush()
                t, t0 = time.perf_counter(), t
                parts.add("outbox.flush (2 files + fsyncs, mark_delivered)", t - t0)
                spool.done(item)
                t, t0 = time.perf_counter(), t
                parts.add("spool.done (rename + dir fsync)", t - t0)
    finally:
        store.close()
    return parts


class _Run:
    def finished(self) -> None:
        raise RuntimeError("a benchmark sample finished early")


def measure_fsync(directory: Path) -> list[float]:
    """One durable small-file write as the outbox does it: write, fsync, rename, fsync dir."""
    directory.mkdir(parents=True)
    body = os.urandom(4096)
    times: list[float] = []
    for i in range(FSYNC_PROBES):
        t0 = time.perf_counter()
        tmp = directory / f".probe-{i}.tmp"
        with tmp.open("wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(directory / f"probe-{i}")
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        times.append(time.perf_counter() - t0)
    return times
