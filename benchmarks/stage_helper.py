"""Scenario 3: the per-stage instrumentation helper against the raw calls it wraps.

``Instruments.stage_span`` opens the stage's span, sets the log context and observes the stage and
agent-response histograms with an exemplar. The raw side makes the same OpenTelemetry
and prometheus-client calls directly: a span from the same tracer provider, two
histograms of the catalog (in a registry of their own) observed with the
span's ids. Both use a provider without exporters, so no export thread competes for the
GIL while a batch is timed. Batches are timed in CPU time of the timing thread, which
other processes' load does not inflate; batches of each alternate, and the goal is on the
median ratio of neighbouring batches.

    python -m benchmarks.stage_helper   # BENCH_STAGE_ROUNDS, BENCH_STAGE_BATCH
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from opentelemetry.trace import Tracer
from prometheus_client import CollectorRegistry

from benchmarks.harness import Report, count, interleave, run
from hephaestus.config import TelemetryConfig
from hephaestus.telemetry import Instruments, Metrics, setup_telemetry

ROUNDS = count("BENCH_STAGE_ROUNDS", 101, 3)
BATCH = count("BENCH_STAGE_BATCH", 200, 20)
STAGE, AGENT = "plan", "architect"


def raw_stage(tracer: Tracer) -> Callable[[], None]:
    """One stage instrumented by hand: span, then both histograms with an exemplar."""
    metrics = Metrics(CollectorRegistry())
    stages, agents = metrics.stage_duration, metrics.agent_response
    attributes = {
        "hephaestus.stage": STAGE,
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": AGENT,
    }

    def stage() -> None:
        started = time.perf_counter()
        with tracer.start_as_current_span(f"invoke_agent {AGENT}", attributes=attributes) as span:
            pass
        elapsed = time.perf_counter() - started
        ids = span.get_span_context()
        sample = {"trace_id": format(ids.trace_id, "032x"), "span_id": format(ids.span_id, "016x")}
        stages.labels(stage=STAGE, outcome="ok").observe(elapsed, exemplar=sample)
        agents.labels(agent=AGENT).observe(elapsed, exemplar=sample)

    return stage


def helper_stage(instruments: Instruments) -> Callable[[], None]:
    """The same stage through the helper the agent uses."""

    def stage() -> None:
        with instruments.stage_span(STAGE, AGENT):
            pass

    return stage


def batch(stage: Callable[[], None]) -> Callable[[], float]:
    """Time ``BATCH`` calls of ``stage``; CPU seconds per call."""

    def timed() -> float:
        gc.collect()
        started = time.thread_time()
        for _ in range(BATCH):
            stage()
        return (time.thread_time() - started) / BATCH

    return timed


def measure(report: Report) -> None:
    """Set telemetry up as the agent does, minus exporters; then alternate batches."""
    handle = setup_telemetry(
        TelemetryConfig(local_traces=False),
        span_file=None,
        models=[],
        env={},
        metrics=Metrics(CollectorRegistry()),
    )
    tracer = handle.tracing.provider.get_tracer("hephaestus.bench")
    variants = {"helper": helper_stage(handle.instruments), "raw": raw_stage(tracer)}
    times = interleave({n: batch(v) for n, v in variants.items()}, ROUNDS, warmup=2)
    handle.shutdown()
    for name, values in times.items():
        report.row(f"{name:<7} {min(values) * 1e6:6.1f} us CPU per stage (best of {len(values)})")
    report.goal(
        "stage helper / raw OTel + prometheus-client calls",
        1.10,
        "x",
        [h / r for h, r in zip(times["helper"], times["raw"], strict=True)],
    )


if __name__ == "__main__":
    run("3 per-stage instrumentation helper", measure)
