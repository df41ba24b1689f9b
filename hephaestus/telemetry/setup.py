"""Telemetry set-up: a tracer provider, the instruments recording into it, the known series.

Kept apart from the package ``__init__``, which imports names on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace.export import SpanExporter

from hephaestus import __version__
from hephaestus.config import TelemetryConfig
from hephaestus.telemetry.catalog import Metrics, default_metrics
from hephaestus.telemetry.events import install_retry_hooks
from hephaestus.telemetry.instrument import Instruments
from hephaestus.telemetry.tracing import TracingHandle, build_tracer_provider

__all__ = ["SpanExporter", "Telemetry", "declare_series", "setup_telemetry"]

_LOG = logging.getLogger("hephaestus.telemetry")


@dataclass
class Telemetry:
    """What :func:`setup_telemetry` set up: pass ``instruments`` to whatever records.

    :meth:`shutdown` flushes within the deadline.
    """

    tracing: TracingHandle
    instruments: Instruments
    shutdown_timeout: float

    @property
    def metrics(self) -> Metrics:
        """The metrics this telemetry records into (their registry is what ``/metrics`` serves)."""
        return self.instruments.metrics

    def shutdown(self) -> bool:
        """Flush spans and stop exporting; never blocks longer than ``shutdown_timeout``."""
        flushed = self.tracing.shutdown(self.shutdown_timeout)
        if not flushed:
            _LOG.warning(
                "telemetry flush did not finish in time; some spans may be lost",
                extra={"deadline_s": self.shutdown_timeout},
            )
        return flushed


def setup_telemetry(
    config: TelemetryConfig,
    *,
    span_file: Path | None,
    models: Iterable[str],
    env: Mapping[str, str] | None = None,
    extra_exporter: SpanExporter | None = None,
    metrics: Metrics | None = None,
) -> Telemetry:
    """Build a tracer provider of its own and the instruments that record into it.

    Nothing global changes but stamina's retry hooks (stamina's own setting): a second
    call makes a second, independent telemetry. ``metrics`` defaults to the catalog on
    prometheus-client's default registry.
    """
    metrics = metrics or default_metrics()
    tracing = build_tracer_provider(
        config, span_file, env=env, extra_exporter=extra_exporter, metrics=metrics
    )
    install_retry_hooks(metrics)
    instruments = Instruments(
        tracing.provider.get_tracer("hephaestus", __version__),
        metrics,
        capture_content=config.capture_content,
        models=frozenset(models),
        relay=tracing.relay if tracing.processors else None,
        test_spans=config.test_spans,
    )
    _LOG.debug("telemetry ready", extra={"exporters": tracing.exporters})
    return Telemetry(tracing, instruments, shutdown_timeout=config.shutdown_timeout)


def declare_series(
    metrics: Metrics,
    *,
    outcome_reasons: Iterable[tuple[str, str]],
    stages: Iterable[str],
    agents: Iterable[str],
    provider: str,
    models: Iterable[str],
) -> None:
    """Create the known label sets at zero so every series exists before its first event."""
    for outcome, reason in outcome_reasons:
        metrics.cycles.labels(outcome=outcome, reason=reason)
        metrics.cycle_duration.labels(outcome=outcome)
    for stage in stages:  # a stage's first failure, too, must be an increase() from zero
        for outcome in ("ok", "failed"):
            metrics.stage_duration.labels(stage=stage, outcome=outcome)
    for agent in agents:
        metrics.agent_response.labels(agent=agent)
    for model in models:
        labels = {
            "gen_ai_operation_name": "chat",
            "gen_ai_provider_name": provider,
            "gen_ai_request_model": model,
        }
        metrics.genai_duration.labels(**labels, error_type="")
        for token_type in ("input", "output"):
            metrics.genai_tokens.labels(**labels, gen_ai_token_type=token_type)
    for result in ("passed", "failed", "no_tests", "timeout"):
        metrics.validation_tests.labels(result=result)
    metrics.export_failures.labels(signal="traces")
