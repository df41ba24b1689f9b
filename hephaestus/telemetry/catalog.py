"""The metrics catalog: every metric Hephaestus exposes, declared once.

Instrumentation, the dashboards and the alert rules all read this module; nothing else
creates metrics. :class:`Metrics` registers them on a registry: prometheus-client's
default one unless another is given (as client_python's ``registry=``), where stamina's
``stamina_retries_total`` also lives.
Label values are bounded: enums, or model names taken from config.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import stamina.instrumentation
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.registry import CollectorRegistry

from hephaestus import __version__

# ``*_created`` series would double the exposition; no rule or dashboard reads them
disable_created_metrics()

Kind = Literal["counter", "gauge", "histogram"]

CYCLE_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
AGENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 20, 60)
RECOVERY_BUCKETS = (1, 5, 10, 20, 30, 60, 120, 300, 900, 3600)
# OpenTelemetry GenAI semantic conventions, explicit bucket boundaries
GENAI_DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
GENAI_TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)


@dataclass(frozen=True)
class MetricSpec:
    """One metric: exposition name (with ``_total`` for counters), type, help, labels."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


GENAI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")

CATALOG: tuple[MetricSpec, ...] = (
    MetricSpec(
        "hephaestus_cycles_total",
        "counter",
        "Improvement cycles by outcome and bounded reason code.",
        ("outcome", "reason"),
    ),
    MetricSpec(
        "hephaestus_cycle_duration_seconds",
        "histogram",
        "Wall-clock duration of a whole cycle.",
        ("outcome",),
        CYCLE_BUCKETS,
    ),
    MetricSpec(
        "hephaestus_stage_duration_seconds",
        "histogram",
        "Duration of one cycle stage; outcome is ok or how the stage ended the cycle.",
        ("stage", "outcome"),
        STAGE_BUCKETS,
    ),
    MetricSpec(
        "hephaestus_agent_response_seconds",
        "histogram",
        "Response time of an LLM-backed agent (brain, architect, code_reviewer, maestro).",
        ("agent",),
        AGENT_BUCKETS,
    ),
    MetricSpec(
        "gen_ai_client_operation_duration_seconds",
        "histogram",
        "GenAI operation duration (OpenTelemetry semantic conventions).",
        (*GENAI_LABELS, "error_type"),
        GENAI_DURATION_BUCKETS,
    ),
    MetricSpec(
        "gen_ai_client_token_usage",
        "histogram",
        "Input and output tokens per GenAI operation (OpenTelemetry semantic conventions).",
        (*GENAI_LABELS, "gen_ai_token_type"),
        GENAI_TOKEN_BUCKETS,
    ),
    MetricSpec(
        "stamina_retries_total",
        "counter",
        "Total number of retries (stamina's own instrumentation).",
        ("callable", "retry_num", "error_type"),
    ),
    MetricSpec(
        "hephaestus_circuit_breaker_state",
        "gauge",
        "Circuit breaker state, one-hot: 1 for the current state of each breaker.",
        ("breaker", "state"),
    ),
    MetricSpec(
        "hephaestus_circuit_breaker_transitions_total",
        "counter",
        "Circuit breaker state transitions.",
        ("breaker", "from_state", "to_state"),
    ),
    MetricSpec(
        "hephaestus_recovery_seconds",
        "histogram",
        "Time from the first failure of a failure streak to the success that ends it.",
        (),
        RECOVERY_BUCKETS,
    ),
    MetricSpec(
        "hephaestus_consecutive_failures", "gauge", "Failed cycles since the last succeeded cycle."
    ),
    MetricSpec(
        "hephaestus_validation_tests_total",
        "counter",
        "pytest validation runs by result.",
        ("result",),
    ),
    MetricSpec(
        "hephaestus_telemetry_export_failures_total",
        "counter",
        "Telemetry exports that failed, by signal.",
        ("signal",),
    ),
    MetricSpec("hephaestus_build_info", "gauge", "Build information; always 1.", ("version",)),
)

SPECS = {spec.name: spec for spec in CATALOG}


def _counter(name: str, registry: CollectorRegistry) -> Counter:
    spec = SPECS[name]
    assert spec.kind == "counter", name
    return Counter(name.removesuffix("_total"), spec.help, spec.labels, registry=registry)


def _gauge(name: str, registry: CollectorRegistry) -> Gauge:
    spec = SPECS[name]
    assert spec.kind == "gauge", name
    return Gauge(name, spec.help, spec.labels, registry=registry)


def _histogram(name: str, registry: CollectorRegistry) -> Histogram:
    spec = SPECS[name]
    assert spec.kind == "histogram" and spec.buckets, name
    return Histogram(name, spec.help, spec.labels, buckets=spec.buckets, registry=registry)


def _retries(registry: CollectorRegistry) -> Counter:
    """Stamina's own ``stamina_retries_total`` on the default registry; ours on another one."""
    if registry is not REGISTRY:
        return _counter("stamina_retries_total", registry)
    counter = stamina.instrumentation.get_prometheus_counter()
    if counter is None:  # hooks were replaced: put stamina's Prometheus hook back
        stamina.instrumentation.set_on_retry_hooks(None)
        counter = stamina.instrumentation.get_prometheus_counter()
    assert counter is not None
    return counter


class Metrics:
    """Every metric of the catalog, registered on one registry.

    Like prometheus-client's own ``registry=`` parameter: the default registry is the
    default (:func:`default_metrics`), and a test or a benchmark passes its own.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.cycles = _counter("hephaestus_cycles_total", registry)
        self.cycle_duration = _histogram("hephaestus_cycle_duration_seconds", registry)
        self.stage_duration = _histogram("hephaestus_stage_duration_seconds", registry)
        self.agent_response = _histogram("hephaestus_agent_response_seconds", registry)
        self.genai_duration = _histogram("gen_ai_client_operation_duration_seconds", registry)
        self.genai_tokens = _histogram("gen_ai_client_token_usage", registry)
        self.retries = _retries(registry)
        self.breaker_state = _gauge("hephaestus_circuit_breaker_state", registry)
        self.breaker_transitions = _counter(
            "hephaestus_circuit_breaker_transitions_total", registry
        )
        self.recovery = _histogram("hephaestus_recovery_seconds", registry)
        self.consecutive_failures = _gauge("hephaestus_consecutive_failures", registry)
        self.validation_tests = _counter("hephaestus_validation_tests_total", registry)
        self.export_failures = _counter("hephaestus_telemetry_export_failures_total", registry)
        self.build_info = _gauge("hephaestus_build_info", registry)
        self.build_info.labels(version=__version__).set(1)

    def by_name(self) -> dict[str, Counter | Gauge | Histogram]:
        """Each metric under its catalog (exposition) name."""
        metrics: tuple[Counter | Gauge | Histogram, ...] = (
            self.cycles,
            self.cycle_duration,
            self.stage_duration,
            self.agent_response,
            self.genai_duration,
            self.genai_tokens,
            self.retries,
            self.breaker_state,
            self.breaker_transitions,
            self.recovery,
            self.consecutive_failures,
            self.validation_tests,
            self.export_failures,
            self.build_info,
        )
        return {spec.name: metric for spec, metric in zip(CATALOG, metrics, strict=True)}


@functools.cache
def default_metrics() -> Metrics:
    """The catalog on prometheus-client's default registry, created once."""
    return Metrics(REGISTRY)
