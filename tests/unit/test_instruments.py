"""Telemetry is injected: a runner records into the tracer and registry it was given.

``Metrics(registry)`` takes a registry the way prometheus-client does (the default registry
being the default), and ``setup_telemetry`` returns the instruments a runner passes on;
nothing global is replaced when a second runner is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina
import stamina.instrumentation
from factories import make_agent, make_config, make_target_repo
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY, CollectorRegistry

from hephaestus import __version__, telemetry
from hephaestus.config import TelemetryConfig
from hephaestus.telemetry.catalog import CATALOG

CALC = {"calc.py": "def add(a, b):\n    return a + b\n"}
SUCCEEDED = {"outcome": "succeeded", "reason": "committed"}


def family_names(registry: CollectorRegistry) -> set[str]:
    return {sample.name for family in registry.collect() for sample in family.samples}


def quiet_instruments(registry: CollectorRegistry | None = None) -> telemetry.Instruments:
    metrics = telemetry.Metrics(registry or CollectorRegistry())
    return telemetry.Instruments(trace.NoOpTracer(), metrics, models=frozenset({"model-a"}))


@pytest.fixture
def retry_hooks() -> Iterator[None]:
    saved = stamina.instrumentation.get_on_retry_hooks()
    yield
    stamina.instrumentation.set_on_retry_hooks(saved)


def test_the_catalog_can_live_on_a_registry_of_its_own():
    registry = CollectorRegistry()
    metrics = telemetry.Metrics(registry)

    assert metrics.registry is registry
    assert list(metrics.by_name()) == [spec.name for spec in CATALOG]
    assert registry.get_sample_value("hephaestus_build_info", {"version": __version__})
    assert telemetry.default_metrics().registry is REGISTRY
    assert telemetry.default_metrics() is telemetry.default_metrics()


def test_a_cycle_is_counted_in_the_registry_it_was_given_and_nowhere_else():
    instruments = quiet_instruments()
    before = REGISTRY.get_sample_value("hephaestus_cycles_total", SUCCEEDED) or 0.0

    with instruments.cycle_span("corr-1", 1) as root:
        instruments.record_cycle("succeeded", "committed", 2.0, root, failures=0)

    registry = instruments.metrics.registry
    assert registry.get_sample_value("hephaestus_cycles_total", SUCCEEDED) == 1.0
    assert (REGISTRY.get_sample_value("hephaestus_cycles_total", SUCCEEDED) or 0.0) == before


def test_the_streak_it_is_told_is_the_gauge_and_a_recovery_is_observed_once():
    instruments = quiet_instruments()
    registry = instruments.metrics.registry

    with instruments.cycle_span("corr-1", 1) as root:
        instruments.record_cycle("failed", "tests_failed", 1.0, root, failures=2)
    streak = registry.get_sample_value("hephaestus_consecutive_failures")
    with instruments.cycle_span("corr-2", 2) as root:
        instruments.record_cycle(
            "succeeded", "committed", 1.0, root, failures=0, recovered_after=7.5
        )

    assert streak == 2.0
    assert registry.get_sample_value("hephaestus_consecutive_failures") == 0.0
    assert registry.get_sample_value("hephaestus_recovery_seconds_count") == 1.0
    assert registry.get_sample_value("hephaestus_recovery_seconds_sum") == 7.5


def test_every_stage_starts_at_zero_both_ok_and_failed():
    metrics = telemetry.Metrics(CollectorRegistry())
    telemetry.declare_series(
        metrics, outcome_reasons=[], stages=["scan", "plan"], agents=[], provider="p", models=[]
    )

    count = "hephaestus_stage_duration_seconds_count"
    for stage in ("scan", "plan"):
        for outcome in ("ok", "failed"):
            labels = {"stage": stage, "outcome": outcome}
            assert metrics.registry.get_sample_value(count, labels) == 0.0
    rejected = {"stage": "plan", "outcome": "rejected"}  # rarer outcomes appear when they happen
    assert metrics.registry.get_sample_value(count, rejected) is None


def test_a_model_outside_the_configuration_is_labelled_other():
    instruments = quiet_instruments()

    assert instruments.model_label("model-a") == "model-a"
    assert instruments.model_label("a-model-the-server-made-up") == "other"


def test_the_renderer_serves_the_registry_it_was_given():
    instruments = quiet_instruments()

    body, content_type = telemetry.MetricsRenderer(instruments.metrics.registry)(None)

    assert content_type.startswith("text/plain")
    assert b"hephaestus_cycles_total" in body
    assert b"python_info" not in body  # a default-registry collector


def test_retries_are_counted_in_a_registry_other_than_the_default_one(retry_hooks):
    metrics = telemetry.Metrics(CollectorRegistry())
    telemetry.install_retry_hooks(metrics)
    attempts: list[int] = []

    @stamina.retry(on=ValueError, attempts=3, wait_initial=0, wait_max=0, wait_jitter=0)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError("transient")
        return "ok"

    assert flaky() == "ok"
    counted = {
        sample.labels["retry_num"]: sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "stamina_retries_total"
        and sample.labels["callable"] == telemetry.qualified_name(flaky)
    }
    assert counted == {"1": 1.0, "2": 1.0}


def test_building_a_second_runner_leaves_the_first_ones_tracer_alone(tmp_path: Path):
    first_spans, second_spans = InMemorySpanExporter(), InMemorySpanExporter()
    first = make_agent(
        make_config(), make_target_repo(tmp_path / "a", CALC), span_exporter=first_spans
    )
    second = make_agent(
        make_config(), make_target_repo(tmp_path / "b", CALC), span_exporter=second_spans
    )
    try:
        result = first.run_cycle()
    finally:
        first.close()
        second.close()

    roots = [s for s in first_spans.get_finished_spans() if s.parent is None]
    assert [s.attributes["hephaestus.correlation_id"] for s in roots] == [result.correlation_id]
    assert second_spans.get_finished_spans() == ()


def test_setup_returns_instruments_that_record_into_its_own_provider():
    exporter = InMemorySpanExporter()
    handle = telemetry.setup_telemetry(
        TelemetryConfig(),
        span_file=None,
        models=["model-a"],
        env={},
        extra_exporter=exporter,
        metrics=telemetry.Metrics(CollectorRegistry()),
    )
    try:
        with handle.instruments.stage_span("scan"):
            pass
        with trace.get_tracer("elsewhere").start_as_current_span("global"):
            pass  # the global provider is not ours: this span goes nowhere we look
    finally:
        handle.shutdown()

    assert [s.name for s in exporter.get_finished_spans()] == ["hephaestus.scan"]
    assert (
        handle.metrics.registry.get_sample_value(
            "hephaestus_stage_duration_seconds_count", {"stage": "scan", "outcome": "ok"}
        )
        == 1.0
    )
