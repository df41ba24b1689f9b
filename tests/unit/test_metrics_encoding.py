"""The memoizing /metrics encoders write exactly what prometheus-client's would, faster.

Every check compares against prometheus-client's own encoders on the same registry, so a
change in the library's output shows up here as a difference, not as a silent drift.
"""

from __future__ import annotations

import time

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
)
from prometheus_client.core import GaugeHistogramMetricFamily
from prometheus_client.exposition import choose_encoder

from hephaestus.telemetry import Metrics, MetricsRenderer, declare_series, encoding

ACCEPT_HEADERS = [
    None,
    "text/plain",
    "text/plain; version=0.0.4",
    "text/plain; version=1.0.0; escaping=underscores",
    "application/openmetrics-text",
    "application/openmetrics-text; version=1.0.0",
    # what Prometheus sends
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
]
EXEMPLAR = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}


class GaugeHistograms:
    """A collector of one gauge histogram (its ``_gsum``/``_gcount`` are listed apart)."""

    def collect(self):
        family = GaugeHistogramMetricFamily("queue_wait", "Wait.", labels=["queue"])
        family.add_metric(["a"], [("1.0", 2), ("+Inf", 3)], gsum_value=4.5)
        yield family


def every_kind_of_metric() -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("jobs", "Jobs done.\nA \\ backslash.", ["kind"], registry=registry)
    counter.labels(kind='quote " backslash \\ newline \n').inc(3, exemplar=EXEMPLAR)
    counter.labels(kind="plain").inc()
    histogram = Histogram("latency_seconds", "Latency.", ["route"], registry=registry)
    for value in (0.001, 0.3, 7.0, 1e9):
        histogram.labels(route="/a").observe(value, exemplar=EXEMPLAR)
    histogram.labels(route="/b")
    Gauge("temperature", "Now.", registry=registry).set(float("-inf"))
    Gauge("ratio", "A NaN.", registry=registry).set(float("nan"))
    Gauge("big", "Large.", registry=registry).set(123456789.0)
    Gauge("job:rate", "A recording-rule style name.", registry=registry).set(0.5)
    Summary("sizes_bytes", "Sizes.", registry=registry).observe(1024)
    Info("build", "Build.", registry=registry).info({"version": "1.2.3"})
    Enum("phase", "Phase.", states=["a", "b"], registry=registry).state("b")
    registry.register(GaugeHistograms())
    return registry


def declared_catalog() -> CollectorRegistry:
    """The catalog, populated, on a registry of its own."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    declare_series(
        metrics,
        outcome_reasons=[("succeeded", "committed"), ("failed", "tests_failed")],
        stages=["scan", "validate"],
        agents=["brain"],
        provider="offline",
        models=["offline-heuristic"],
    )
    metrics.cycle_duration.labels(outcome="succeeded").observe(2.5, exemplar=EXEMPLAR)
    metrics.cycles.labels(outcome="succeeded", reason="committed").inc(exemplar=EXEMPLAR)
    return registry


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
@pytest.mark.parametrize("which", ["every kind of metric", "the catalog"])
def test_the_encoders_write_what_prometheus_client_writes(accept, which):
    registry = every_kind_of_metric() if which == "every kind of metric" else declared_catalog()
    library, _ = choose_encoder(accept or "")
    ours = encoding.fast_encoder(library)
    assert ours is not None
    assert ours(registry) == library(registry)
    assert ours(registry) == library(registry)  # and again, from what it remembered


@pytest.mark.parametrize(
    "accept",
    [
        "text/plain; version=1.0.0; escaping=allow-utf-8",
        "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
        "application/openmetrics-text; version=2.0.0",
    ],
)
def test_other_negotiated_formats_keep_the_library_encoder(accept):
    library, _ = choose_encoder(accept)
    assert encoding.fast_encoder(library) is None


def test_what_is_remembered_is_bounded_and_output_stays_exact(monkeypatch):
    monkeypatch.setattr(encoding, "MAX_REMEMBERED", 8)
    registry = CollectorRegistry()
    gauge = Gauge("g", "G.", ["n"], registry=registry)
    library, _ = choose_encoder("application/openmetrics-text")
    ours = encoding.fast_encoder(library)
    assert ours is not None
    for n in range(40):
        gauge.labels(n=str(n)).set(n / 7)
        assert ours(registry) == library(registry)
    assert len(ours._memo._prefixes) <= 8
    assert len(ours._memo._values) <= 8


def test_no_created_series_are_exposed():
    render = MetricsRenderer(declared_catalog())
    for accept in (None, "application/openmetrics-text"):
        body, _ = render(accept)
        assert b"hephaestus_cycles_total" in body
        assert b"_created" not in body


def test_a_render_costs_less_than_prometheus_client_s():
    registry = declared_catalog()
    library, _ = choose_encoder("application/openmetrics-text")
    ours = encoding.fast_encoder(library)
    assert ours is not None
    ours(registry)
    timings: dict[str, list[float]] = {"ours": [], "library": []}
    for _ in range(9):  # interleaved; the fastest of each is the least disturbed by load
        for name, encode in (("ours", ours), ("library", library)):
            started = time.perf_counter()
            encode(registry)
            timings[name].append(time.perf_counter() - started)
    assert min(timings["ours"]) < min(timings["library"])
