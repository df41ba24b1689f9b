"""The memoizing /metrics encoders write exactly what prometheus-client's would, faster.

Every check compares against prometheus-client's own encoders on the same registry, so a
change in the library's output shows up here as a difference, not as a silent drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import prometheus_client
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
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import RestrictedRegistry

from hephaestus.telemetry import Metrics, MetricsRenderer, declare_series, encoding, readout

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
    Histogram("offset_seconds", "Skew; no _sum.", buckets=(-1, 0, 1), registry=registry).observe(-2)
    Histogram("payload", "Sizes.", unit="bytes", registry=registry).observe(512)
    Counter("unlabelled", "No labels.", registry=registry).inc(0.5)
    Counter("no_children_yet", "Labelled, never used.", ["kind"], registry=registry)
    Gauge("callback", "From a function.", registry=registry).set_function(lambda: 42)
    Gauge("negative_zero", "-0.0 is written apart from 0.0.", registry=registry).set(-0.0)
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


def restricted() -> RestrictedRegistry:
    """A registry view the direct reading does not know (it collects instead)."""
    return every_kind_of_metric().restricted_registry(["jobs_total", "latency_seconds"])


REGISTRIES = {
    "every kind of metric": every_kind_of_metric,
    "the catalog": declared_catalog,
    "a restricted registry": restricted,
}


def encoders(accept: str) -> tuple[Callable, Callable]:
    """prometheus-client's encoder for ``accept``, and ours."""
    library, _ = choose_encoder(accept)
    ours = encoding.fast_encoder(library)
    assert ours is not None
    return library, ours


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
@pytest.mark.parametrize("which", REGISTRIES)
def test_the_encoders_write_what_prometheus_client_writes(accept, which):
    registry = REGISTRIES[which]()
    library, _ = choose_encoder(accept or "")
    ours = encoding.fast_encoder(library)
    assert ours is not None
    assert ours(registry) == library(registry)
    assert ours(registry) == library(registry)  # and again, from what it remembered


@pytest.mark.parametrize("accept", ["text/plain", "application/openmetrics-text"])
def test_a_render_after_each_change_writes_the_new_values(accept):
    registry = every_kind_of_metric()
    library, ours = encoders(accept)
    counter = registry._names_to_collectors["jobs_total"]
    histogram = registry._names_to_collectors["latency_seconds"]
    gauge = registry._names_to_collectors["negative_zero"]
    changes = [
        lambda: counter.labels(kind="plain").inc(),
        lambda: counter.labels(kind="plain").inc(0, exemplar={"trace_id": "new"}),  # exemplar only
        lambda: histogram.labels(route="/b").observe(0.2, exemplar=EXEMPLAR),
        lambda: histogram.labels(route="/new").observe(3),  # a child appears
        lambda: gauge.set(0.0),  # equal to -0.0, written differently
        lambda: gauge.set(-0.0),
        lambda: gauge.set(float("nan")),
        lambda: histogram.remove("/a"),  # a child goes
    ]
    assert ours(registry) == library(registry)
    for change in changes:
        change()
        assert ours(registry) == library(registry)


def test_the_catalog_is_read_without_collecting_it(monkeypatch):
    registry = declared_catalog()
    expected = {
        accept: choose_encoder(accept)[0](registry)
        for accept in ("", "application/openmetrics-text")
    }

    def refuse(self):
        raise AssertionError(f"{self} was collected")

    monkeypatch.setattr(MetricWrapperBase, "collect", refuse)
    for accept, body in expected.items():
        assert encoders(accept)[1](registry) == body


@pytest.mark.parametrize(
    "reason",
    ["created series on", "multiprocess values", "target info", "changed internals"],
)
def test_what_the_direct_reading_does_not_know_is_collected_exactly(monkeypatch, reason):
    registry = every_kind_of_metric()
    if reason == "created series on":
        monkeypatch.setattr(prometheus_client.metrics, "_use_created", True)
    elif reason == "multiprocess values":
        monkeypatch.setattr(prometheus_client.values, "ValueClass", object)
    elif reason == "target info":
        registry.set_target_info({"service": "hephaestus"})
    else:  # as with a prometheus-client that keeps histogram values elsewhere

        def missing(child, exemplars):
            return child._bucket_values

        monkeypatch.setitem(readout._READERS, Histogram, missing)
    for accept in ("text/plain", "application/openmetrics-text"):
        library, ours = encoders(accept)
        assert ours(registry) == library(registry)


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
    assert len(ours._memo._chunks) <= 8
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
