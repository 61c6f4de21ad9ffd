"""Prometheus metrics: per-stage counters and latencies, scrape-time gauges, a ``/metrics`` port.

A ``Metrics`` value owns its own ``CollectorRegistry`` (never the process-global one), so two
daemons in one test process, or two tests, never see each other's numbers.

- **Stages.** ``with metrics.stage("name"):`` counts a block by outcome and times it; the
  pipeline enters it around each of its stages (``observe_stages(STAGES)``), and any other
  block can be timed the same way.
- **Messages.** ``record_message(outcome, seconds)`` counts a handled message and its end-to-end
  time (claimed → committed and replies delivered).
- **Gauges** are read when Prometheus scrapes: the daemon registers a ``Callable[[], float]`` per
  gauge (``register_gauge("inbox_depth", fn, inbox="spool")``). A callback that raises leaves
  its sample out of that scrape and counts in ``gateway_gauge_errors_total``; the others are
  still served. Callbacks run in the HTTP server's thread: they must be thread-safe.
- **Endpoint.** ``start_server()`` serves ``/metrics`` on 127.0.0.1 (a daemon thread, so a busy
  event loop still answers scrapes); ``stop_server()`` ends it.

Every metric, with its meaning, is listed in ``docs/operations.md``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from gateway.errors import ConfigurationError, MessageError
from gateway.logs import get_logger

log = get_logger("metrics")

#: Our port by convention (configurable); localhost only, see ``docs/operations.md``.
DEFAULT_PORT = 9478
DEFAULT_HOST = "127.0.0.1"

# Stages take 0.05-20 ms; a whole message a few ms to seconds (a slow disk, a big claim).
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                 0.5, 1.0, 2.5)
MESSAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0, 60.0)

#: How a stage run ended.
OK = "ok"  # the stage did its part; the next stage runs
FINISHED = "finished"  # the stage ended the run without a decision (duplicate, incoming signal)
REJECTED = "rejected"  # the stage raised a MessageError: the message is answered with an error
ERROR = "error"  # any other exception: a bug or a storage failure
STAGE_OUTCOMES = (OK, FINISHED, REJECTED, ERROR)


@dataclass(frozen=True, slots=True)
class GaugeSpec:
    """One scrape-time gauge: its exposed name, help text and label names."""

    metric: str
    help: str
    labels: tuple[str, ...] = ()


#: The gauges the daemon can feed, by the key ``register_gauge`` takes.
GAUGES: Mapping[str, GaugeSpec] = {
    "inbox_depth": GaugeSpec(
        "gateway_inbox_depth",
        "Messages waiting in an inbox (spool incoming/ or an IMAP mailbox), not yet taken.",
        ("inbox",),
    ),
    "oldest_pending_reply_age": GaugeSpec(
        "gateway_oldest_pending_reply_age_seconds",
        "Age of the oldest reply committed but not yet delivered (0 when none is pending).",
    ),
    "outstanding_acks": GaugeSpec(
        "gateway_outstanding_acks",
        "Replies sent with an ebXML AckRequested whose Acknowledgment has not arrived yet.",
    ),
    "dead_letters": GaugeSpec(
        "gateway_dead_letters",
        "Items given up on, waiting for a person: parked spool files and dead replies.",
        ("kind",),
    ),
    "certificate_expiry_days": GaugeSpec(
        "gateway_certificate_expiry_days",
        "Days until a certificate expires (negative once expired).",
        ("certificate",),
    ),
}


class StageRun:
    """The outcome of one timed block; ``finished()`` marks a run the block ended early."""

    __slots__ = ("outcome",)

    def __init__(self) -> None:
        self.outcome = OK

    def finished(self) -> None:
        """This block ended the run without a decision (e.g. a duplicate answered again)."""
        self.outcome = FINISHED


class _CallbackGauges:
    """A collector that reads the registered callbacks at scrape time."""

    def __init__(self, errors: Counter) -> None:
        self._lock = threading.Lock()
        self._reads: dict[str, dict[tuple[str, ...], Callable[[], float]]] = {
            key: {} for key in GAUGES
        }
        self._errors = errors
        self._failing: set[tuple[str, tuple[str, ...]]] = set()

    def set(self, key: str, values: tuple[str, ...], read: Callable[[], float]) -> None:
        with self._lock:
            self._reads[key][values] = read

    def remove(self, key: str, values: tuple[str, ...]) -> None:
        with self._lock:
            self._reads[key].pop(values, None)

    def describe(self) -> Iterator[Metric]:
        # Names only, so registering never calls a callback.
        for spec in GAUGES.values():
            yield GaugeMetricFamily(spec.metric, spec.help, labels=spec.labels)
        yield from self._errors.describe()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            reads = {key: dict(children) for key, children in self._reads.items()}
        for key, children in reads.items():
            spec = GAUGES[key]
            family = GaugeMetricFamily(spec.metric, spec.help, labels=spec.labels)
            for values, read in children.items():
                value = self._read(key, values, read)
                if value is not None:
                    family.add_metric(list(values), value)
            yield family
        # After the reads, so a failure shows in the same scrape that left its sample out.
        yield from self._errors.collect()

    def _read(
        self, key: str, values: tuple[str, ...], read: Callable[[], float]
    ) -> float | None:
        ident = (key, values)
        try:
            value = float(read())
        except Exception as exc:
            self._errors.labels(gauge=key).inc()
            if ident not in self._failing:  # log the change, not every scrape
                self._failing.add(ident)
                log.warning("gauge_read_failed", gauge=key, labels=list(values),
                            error=f"{type(exc).__name__}: {exc}")
            return None
        if ident in self._failing:
            self._failing.discard(ident)
            log.info("gauge_read_recovered", gauge=key, labels=list(values))
        return value


class Metrics:
    """The daemon's metrics, in a registry of their own."""

    def __init__(self, *, process_metrics: bool = True) -> None:
        """``process_metrics`` adds the standard ``process_*``, ``python_*`` collectors."""
        self.registry = CollectorRegistry()
        self.stage_runs = Counter(
            "gateway_stage_runs",
            "Pipeline stage runs, by stage and outcome (ok, finished, rejected, error).",
            ("stage", "outcome"),
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "gateway_stage_duration_seconds",
            "Time spent in one pipeline stage, per run.",
            ("stage",),
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.messages = Counter(
            "gateway_messages",
            "Messages handled, by outcome (accepted, rejected, duplicate, ebxml_error, ...).",
            ("outcome",),
            registry=self.registry,
        )
        self.message_seconds = Histogram(
            "gateway_message_duration_seconds",
            "End-to-end time per message: taken from the inbox to committed and replied.",
            buckets=MESSAGE_BUCKETS,
            registry=self.registry,
        )
        self.spool_parked_files = Counter(
            "gateway_spool_parked",
            "Files the spool parked in bad/, by kind (symlink, fifo, directory, socket, device, "
            "abandoned, unclaimable, crashes, failed, unreadable).",
            ("kind",),
            registry=self.registry,
        )
        self.gauge_errors = Counter(
            "gateway_gauge_errors",
            "Scrape-time gauge reads that raised (the sample was left out of that scrape).",
            ("gauge",),
            registry=None,  # served by _CallbackGauges, after the reads it counts
        )
        for key in GAUGES:
            self.gauge_errors.labels(gauge=key)
        self._gauges = _CallbackGauges(self.gauge_errors)
        self.registry.register(self._gauges)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            if GC_COLLECTOR is not None:
                GCCollector(registry=self.registry)
        self._server: tuple[WSGIServer, threading.Thread] | None = None
        self._server_lock = threading.Lock()

    # --- stages and messages ----------------------------------------------------------------

    @contextmanager
    def stage(self, name: str) -> Iterator[StageRun]:
        """Count and time the block as stage ``name``.

        The outcome is ``ok``, or ``finished`` if the block calls ``run.finished()``,
        ``rejected`` if it raises a ``MessageError``, ``error`` for any other exception (which
        is re-raised). A cancellation is not counted: the stage did not end.
        """
        run = StageRun()
        started = time.perf_counter()
        try:
            yield run
        except MessageError:
            run.outcome = REJECTED
            raise
        except Exception:
            run.outcome = ERROR
            raise
        except BaseException:
            run.outcome = ""
            raise
        finally:
            if run.outcome:
                self.stage_seconds.labels(stage=name).observe(time.perf_counter() - started)
                self.stage_runs.labels(stage=name, outcome=run.outcome).inc()

    def observe_stages(
        self, names: Iterable[str]
    ) -> Callable[[str], AbstractContextManager[StageRun]]:
        """``stage``, to be entered around each pipeline stage run (``Pipeline(observe=...)``),
        after making a zero-valued series for each of ``names`` (the pipeline's ``STAGES``)."""
        for name in names:
            self._prepare(name)
        return self.stage

    def _prepare(self, stage: str) -> None:
        # Zero-valued series from the start, so rates and dashboards have no gaps.
        self.stage_seconds.labels(stage=stage)
        for outcome in STAGE_OUTCOMES:
            self.stage_runs.labels(stage=stage, outcome=outcome)

    def record_message(self, outcome: str, seconds: float) -> None:
        """One handled message: its outcome and end-to-end time in seconds."""
        self.messages.labels(outcome=outcome).inc()
        self.message_seconds.observe(seconds)

    def spool_parked(self, kind: str) -> None:
        """One file parked by the spool (``Spool(on_parked=...)``), by its kind."""
        self.spool_parked_files.labels(kind=kind).inc()

    # --- scrape-time gauges -----------------------------------------------------------------

    def register_gauge(self, gauge: str, read: Callable[[], float], **labels: str) -> None:
        """Serve ``read()`` as gauge ``gauge`` (a key of ``GAUGES``) with these labels.

        Registering the same gauge and labels again replaces the callback (e.g. after a
        reload changed the mailboxes). ``read`` runs at every scrape, in the server thread.
        """
        self._gauges.set(gauge, self._label_values(gauge, labels), read)

    def remove_gauge(self, gauge: str, **labels: str) -> None:
        """Stop serving the gauge ``gauge`` with these labels (e.g. a mailbox was removed)."""
        self._gauges.remove(gauge, self._label_values(gauge, labels))

    @staticmethod
    def _label_values(gauge: str, labels: Mapping[str, str]) -> tuple[str, ...]:
        spec = GAUGES.get(gauge)
        if spec is None:
            raise ValueError(f"unknown gauge {gauge!r}; known: {', '.join(sorted(GAUGES))}")
        if set(labels) != set(spec.labels):
            raise ValueError(
                f"gauge {gauge!r} takes labels {list(spec.labels)}, got {sorted(labels)}"
            )
        return tuple(str(labels[name]) for name in spec.labels)

    # --- exposition -------------------------------------------------------------------------

    def render(self) -> bytes:
        """The current metrics in the Prometheus text format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    def start_server(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns the bound address.

        Binds 127.0.0.1 unless told otherwise: the metrics name partners and mailboxes and are
        not for the network (scrape through a local Prometheus or an authenticating proxy).
        ``port=0`` takes a free port (tests). Raises ``ConfigurationError`` if the address
        cannot be bound.
        """
        with self._server_lock:
            if self._server is not None:
                raise RuntimeError("the metrics server is already running")
            try:
                server, thread = start_http_server(port, addr=host, registry=self.registry)
            except OSError as exc:
                raise ConfigurationError(
                    f"metrics: cannot listen on {host}:{port}: {exc.strerror or exc}"
                ) from exc
            self._server = (server, thread)
        bound_host, bound_port = server.server_address[:2]
        log.info("metrics_listening", host=str(bound_host), port=int(bound_port))
        return str(bound_host), int(bound_port)

    def stop_server(self, timeout: float = 5.0) -> None:
        """Stop serving ``/metrics`` and close the socket; a no-op if not started."""
        with self._server_lock:
            running, self._server = self._server, None
        if running is None:
            return
        server, thread = running
        server.shutdown()
        server.server_close()
        thread.join(timeout)


class MetricsEndpoint:
    """``/metrics`` as a service: listening from the daemon's start until it stops."""

    name = "metrics"

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set. A port that cannot be bound raises
        ``ConfigurationError`` at once (the daemon stops: exit code 78)."""
        host, port = self.metrics.start_server(self.host, self.port)
        log.info("metrics_serving", url=f"http://{host}:{port}/metrics")
        try:
            await stop.wait()
        finally:
            await asyncio.to_thread(self.metrics.stop_server)


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ERROR",
    "FINISHED",
    "GAUGES",
    "OK",
    "REJECTED",
    "STAGE_OUTCOMES",
    "GaugeSpec",
    "Metrics",
    "MetricsEndpoint",
    "StageRun",
]
