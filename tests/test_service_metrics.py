"""Metrics through the real ``/metrics`` HTTP endpoint, parsed as Prometheus parses them."""

from __future__ import annotations

import random
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.errors import ConfigurationError, NotXml
from gateway.pipeline import STAGES, Pipeline
from gateway.records import Outcome
from gateway.service.metrics import GAUGES, Metrics
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ebxml_message

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    m = Metrics()
    yield m
    m.stop_server()


@pytest.fixture
def served(metrics: Metrics) -> Iterator[tuple[Metrics, str]]:
    host, port = metrics.start_server(port=0)
    yield metrics, f"http://{host}:{port}/metrics"


def scrape(url: str) -> Samples:
    """GET the endpoint and parse the text format into {(name, labels): value}."""
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode("utf-8")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


# --- the endpoint ------------------------------------------------------------------------------


def test_binds_localhost_by_default_and_serves_process_metrics(
    served: tuple[Metrics, str],
) -> None:
    _, url = served
    assert url.startswith("http://127.0.0.1:")
    samples = scrape(url)
    assert value(samples, "process_resident_memory_bytes") > 0
    assert any(name.startswith("python_gc_") for name, _ in samples)


def test_stop_closes_the_port(metrics: Metrics) -> None:
    host, port = metrics.start_server(port=0)
    scrape(f"http://{host}:{port}/metrics")
    metrics.stop_server()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2)
    metrics.stop_server()  # a second stop is harmless
    # The port is released: the server can listen on it again (as after a restart).
    assert metrics.start_server(host, port) == (host, port)
    scrape(f"http://{host}:{port}/metrics")


def test_a_taken_port_is_a_configuration_error(metrics: Metrics) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{taken}"):
            metrics.start_server(port=taken)


def test_registries_are_isolated(served: tuple[Metrics, str]) -> None:
    _, url = served
    other = Metrics(process_metrics=False)
    other.record_message("accepted", 0.5)
    assert ("gateway_messages_total", frozenset({("outcome", "accepted")})) not in scrape(url)
    assert b'gateway_messages_total{outcome="accepted"} 1.0' in other.render()


# --- stages and messages -----------------------------------------------------------------------


def test_observed_stages_count_outcomes_and_time(served: tuple[Metrics, str]) -> None:
    metrics, url = served
    observe = metrics.observe_stages(("accept", "finish", "reject", "crash", "never"))
    for _ in range(3):
        with observe("accept"):
            pass
    with observe("finish") as run:
        run.finished()
    with pytest.raises(NotXml), observe("reject"):
        raise NotXml("ikke XML")
    with pytest.raises(RuntimeError), observe("crash"):
        raise RuntimeError("bug")

    samples = scrape(url)
    runs = "gateway_stage_runs_total"
    assert value(samples, runs, stage="accept", outcome="ok") == 3
    assert value(samples, runs, stage="accept", outcome="error") == 0  # pre-created at zero
    assert value(samples, runs, stage="finish", outcome="finished") == 1
    assert value(samples, runs, stage="reject", outcome="rejected") == 1
    assert value(samples, runs, stage="crash", outcome="error") == 1
    assert value(samples, runs, stage="never", outcome="ok") == 0  # declared, never run
    assert value(samples, "gateway_stage_duration_seconds_count", stage="accept") == 3
    assert value(samples, "gateway_stage_duration_seconds_count", stage="crash") == 1
    assert value(samples, "gateway_stage_duration_seconds_bucket", stage="accept", le="+Inf") == 3


def test_stage_context_manager_and_message_histogram(served: tuple[Metrics, str]) -> None:
    metrics, url = served
    with metrics.stage("deliver"):
        pass
    with metrics.stage("deliver") as run:
        run.finished()
    metrics.record_message("accepted", 0.004)
    metrics.record_message("accepted", 0.2)
    metrics.record_message("rejected", 3.0)
    samples = scrape(url)
    assert value(samples, "gateway_stage_runs_total", stage="deliver", outcome="ok") == 1
    assert value(samples, "gateway_stage_runs_total", stage="deliver", outcome="finished") == 1
    assert value(samples, "gateway_messages_total", outcome="accepted") == 2
    assert value(samples, "gateway_messages_total", outcome="rejected") == 1
    assert value(samples, "gateway_message_duration_seconds_count") == 3
    assert value(samples, "gateway_message_duration_seconds_bucket", le="0.005") == 1
    assert value(samples, "gateway_message_duration_seconds_bucket", le="0.25") == 2
    assert value(samples, "gateway_message_duration_seconds_sum") == pytest.approx(3.204)


def test_real_pipeline_stages_are_measured(
    served: tuple[Metrics, str],
    make_pipeline: Callable[..., Pipeline],
) -> None:
    """Observing STAGES is all it takes: the pipeline enters the observer around each stage."""
    metrics, url = served
    pipeline = make_pipeline()
    pipeline.observe = metrics.observe_stages(STAGES)
    head, krav = make_claim(
        rng=random.Random(7),
        practitioner="lege",
        bills=2,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 8, 30),
    )
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(7))
    first = pipeline.handle(raw, source="spool", source_ref="a", source_name="a.msg")
    again = pipeline.handle(raw, source="spool", source_ref="b", source_name="b.msg")
    broken = pipeline.handle(b"<not xml", source="spool", source_ref="c", source_name="c.xml")
    assert first.outcome in (Outcome.ACCEPTED, Outcome.PARTIALLY_ACCEPTED, Outcome.REJECTED)
    assert again.outcome is Outcome.DUPLICATE
    assert broken.outcome is Outcome.REJECTED

    samples = scrape(url)
    runs = "gateway_stage_runs_total"
    assert value(samples, runs, stage="run_rules", outcome="ok") == 1
    assert value(samples, runs, stage="unwrap", outcome="ok") == 3
    assert value(samples, runs, stage="check_ebxml_duplicate", outcome="finished") == 1
    assert value(samples, runs, stage="parse_payload", outcome="rejected") == 1
    for name in STAGES:
        assert ("gateway_stage_duration_seconds_count", frozenset({("stage", name)})) in samples
    total_errors = sum(value(samples, runs, stage=n, outcome="error") for n in STAGES)
    assert total_errors == 0


# --- scrape-time gauges ------------------------------------------------------------------------


def test_gauges_are_read_at_scrape_time(served: tuple[Metrics, str]) -> None:
    metrics, url = served
    depth = {"spool": 4.0}
    metrics.register_gauge("inbox_depth", lambda: depth["spool"], inbox="spool")
    metrics.register_gauge("inbox_depth", lambda: 2, inbox="imap:claims")
    metrics.register_gauge("oldest_pending_reply_age", lambda: 12.5)
    metrics.register_gauge("outstanding_acks", lambda: 3)
    metrics.register_gauge("dead_letters", lambda: 1, kind="spool")
    metrics.register_gauge("certificate_expiry_days", lambda: 41.5, certificate="signing")

    samples = scrape(url)
    assert value(samples, "gateway_inbox_depth", inbox="spool") == 4
    assert value(samples, "gateway_inbox_depth", inbox="imap:claims") == 2
    assert value(samples, "gateway_oldest_pending_reply_age_seconds") == 12.5
    assert value(samples, "gateway_outstanding_acks") == 3
    assert value(samples, "gateway_dead_letters", kind="spool") == 1
    assert value(samples, "gateway_certificate_expiry_days", certificate="signing") == 41.5

    depth["spool"] = 9.0
    assert value(scrape(url), "gateway_inbox_depth", inbox="spool") == 9


def test_a_failing_gauge_is_left_out_and_counted(served: tuple[Metrics, str]) -> None:
    metrics, url = served

    def broken() -> float:
        raise OSError("database is locked")

    metrics.register_gauge("outstanding_acks", broken)
    metrics.register_gauge("inbox_depth", lambda: 5, inbox="spool")
    samples = scrape(url)
    assert ("gateway_outstanding_acks", frozenset()) not in samples
    assert value(samples, "gateway_inbox_depth", inbox="spool") == 5
    assert value(samples, "gateway_gauge_errors_total", gauge="outstanding_acks") == 1
    scrape(url)
    assert value(scrape(url), "gateway_gauge_errors_total", gauge="outstanding_acks") == 3

    metrics.register_gauge("outstanding_acks", lambda: 0)  # replaced: recovers
    assert value(scrape(url), "gateway_outstanding_acks") == 0


def test_removed_gauges_disappear(served: tuple[Metrics, str]) -> None:
    metrics, url = served
    metrics.register_gauge("inbox_depth", lambda: 1, inbox="imap:old")
    assert value(scrape(url), "gateway_inbox_depth", inbox="imap:old") == 1
    metrics.remove_gauge("inbox_depth", inbox="imap:old")
    assert ("gateway_inbox_depth", frozenset({("inbox", "imap:old")})) not in scrape(url)


@pytest.mark.parametrize(
    ("gauge", "labels"),
    [
        ("inbox_size", {"inbox": "spool"}),  # unknown gauge
        ("inbox_depth", {}),  # label missing
        ("outstanding_acks", {"partner": "x"}),  # label not taken
    ],
)
def test_gauge_names_and_labels_are_checked(
    metrics: Metrics, gauge: str, labels: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match=gauge):
        metrics.register_gauge(gauge, lambda: 1.0, **labels)


def test_every_gauge_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "operations.md").read_text("utf-8")
    names = [spec.metric for spec in GAUGES.values()] + [
        "gateway_stage_runs_total",
        "gateway_stage_duration_seconds",
        "gateway_messages_total",
        "gateway_message_duration_seconds",
        "gateway_gauge_errors_total",
    ]
    for name in names:
        assert f"`{name}`" in doc, name
