"""The metrics catalog: every metric Hephaestus exposes, declared once.

Instrumentation, the dashboards and the alert rules all read this module; nothing else
creates metrics. Metrics live on prometheus-client's default registry (as in
client_python's own examples), where stamina's ``stamina_retries_total`` also lives.
Label values are bounded: enums, or model names taken from config.
"""

from __future__ import annotations

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


def _create(spec: MetricSpec, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
    if spec.kind == "counter":
        return Counter(spec.name.removesuffix("_total"), spec.help, spec.labels, registry=registry)
    if spec.kind == "gauge":
        return Gauge(spec.name, spec.help, spec.labels, registry=registry)
    return Histogram(spec.name, spec.help, spec.labels, buckets=spec.buckets, registry=registry)


def _stamina_counter() -> Counter:
    """Stamina creates ``stamina_retries_total`` on the default registry; make it exist now."""
    counter = stamina.instrumentation.get_prometheus_counter()
    if counter is None:  # hooks were replaced: put stamina's Prometheus hook back
        stamina.instrumentation.set_on_retry_hooks(None)
        counter = stamina.instrumentation.get_prometheus_counter()
    assert counter is not None
    return counter


def _instruments() -> dict[str, Counter | Gauge | Histogram]:
    made: dict[str, Counter | Gauge | Histogram] = {}
    for spec in CATALOG:
        made[spec.name] = (
            _stamina_counter() if spec.name == "stamina_retries_total" else _create(spec, REGISTRY)
        )
    return made


INSTRUMENTS = _instruments()

CYCLES: Counter = INSTRUMENTS["hephaestus_cycles_total"]  # type: ignore[assignment]
CYCLE_DURATION: Histogram = INSTRUMENTS["hephaestus_cycle_duration_seconds"]  # type: ignore[assignment]
STAGE_DURATION: Histogram = INSTRUMENTS["hephaestus_stage_duration_seconds"]  # type: ignore[assignment]
AGENT_RESPONSE: Histogram = INSTRUMENTS["hephaestus_agent_response_seconds"]  # type: ignore[assignment]
GENAI_DURATION: Histogram = INSTRUMENTS["gen_ai_client_operation_duration_seconds"]  # type: ignore[assignment]
GENAI_TOKENS: Histogram = INSTRUMENTS["gen_ai_client_token_usage"]  # type: ignore[assignment]
RETRIES: Counter = INSTRUMENTS["stamina_retries_total"]  # type: ignore[assignment]
BREAKER_STATE: Gauge = INSTRUMENTS["hephaestus_circuit_breaker_state"]  # type: ignore[assignment]
BREAKER_TRANSITIONS: Counter = INSTRUMENTS["hephaestus_circuit_breaker_transitions_total"]  # type: ignore[assignment]
RECOVERY: Histogram = INSTRUMENTS["hephaestus_recovery_seconds"]  # type: ignore[assignment]
CONSECUTIVE_FAILURES: Gauge = INSTRUMENTS["hephaestus_consecutive_failures"]  # type: ignore[assignment]
VALIDATION_TESTS: Counter = INSTRUMENTS["hephaestus_validation_tests_total"]  # type: ignore[assignment]
EXPORT_FAILURES: Counter = INSTRUMENTS["hephaestus_telemetry_export_failures_total"]  # type: ignore[assignment]
BUILD_INFO: Gauge = INSTRUMENTS["hephaestus_build_info"]  # type: ignore[assignment]

BUILD_INFO.labels(version=__version__).set(1)
