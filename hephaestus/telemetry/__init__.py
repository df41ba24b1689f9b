"""The one package that knows OpenTelemetry and prometheus-client.

The agent calls :func:`setup_telemetry` once and then the small helpers re-exported here
(``cycle_span``, ``stage_span``, ``chat_span``, ``tool_span``, ``record_cycle``…).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace.export import SpanExporter

from hephaestus import __version__
from hephaestus.config import TelemetryConfig
from hephaestus.telemetry import catalog
from hephaestus.telemetry.collector import MetricsCollector
from hephaestus.telemetry.events import (
    breaker_transition,
    declare_breaker,
    declare_retries,
    install_retry_hooks,
)
from hephaestus.telemetry.exposition import render_metrics
from hephaestus.telemetry.instrument import (
    ChatCall,
    CycleSpan,
    ToolRun,
    add_event,
    chat_span,
    configure,
    cycle_span,
    exemplar,
    record_cycle,
    resume_failure_streak,
    set_attributes,
    stage_span,
    tool_span,
)
from hephaestus.telemetry.logs import StructuredLogger, configure_logging
from hephaestus.telemetry.tracing import TracingHandle, build_tracer_provider

__all__ = [
    "ChatCall",
    "CycleSpan",
    "MetricsCollector",
    "SpanExporter",
    "StructuredLogger",
    "Telemetry",
    "ToolRun",
    "add_event",
    "breaker_transition",
    "chat_span",
    "configure_logging",
    "cycle_span",
    "declare_breaker",
    "declare_retries",
    "declare_series",
    "exemplar",
    "record_cycle",
    "render_metrics",
    "resume_failure_streak",
    "set_attributes",
    "setup_telemetry",
    "stage_span",
    "tool_span",
]

_LOG = logging.getLogger("hephaestus.telemetry")


@dataclass
class Telemetry:
    """What :func:`setup_telemetry` set up; :meth:`shutdown` flushes within the deadline."""

    tracing: TracingHandle
    shutdown_timeout: float

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
) -> Telemetry:
    """Build the tracer provider and point every helper at it."""
    tracing = build_tracer_provider(config, span_file, env=env, extra_exporter=extra_exporter)
    install_retry_hooks()
    configure(
        tracing.provider.get_tracer("hephaestus", __version__),
        capture_content=config.capture_content,
        models=list(models),
        relay=tracing.relay if tracing.processors else None,
    )
    _LOG.debug("telemetry ready", extra={"exporters": tracing.exporters})
    return Telemetry(tracing=tracing, shutdown_timeout=config.shutdown_timeout)


def declare_series(
    *,
    outcome_reasons: Iterable[tuple[str, str]],
    stages: Iterable[str],
    agents: Iterable[str],
    provider: str,
    models: Iterable[str],
) -> None:
    """Create the known label sets at zero so every series exists before its first event."""
    for outcome, reason in outcome_reasons:
        catalog.CYCLES.labels(outcome=outcome, reason=reason)
        catalog.CYCLE_DURATION.labels(outcome=outcome)
    for stage in stages:
        catalog.STAGE_DURATION.labels(stage=stage, outcome="ok")
    for agent in agents:
        catalog.AGENT_RESPONSE.labels(agent=agent)
    for model in models:
        labels = {
            "gen_ai_operation_name": "chat",
            "gen_ai_provider_name": provider,
            "gen_ai_request_model": model,
        }
        catalog.GENAI_DURATION.labels(**labels, error_type="")
        for token_type in ("input", "output"):
            catalog.GENAI_TOKENS.labels(**labels, gen_ai_token_type=token_type)
    for result in ("passed", "failed", "no_tests", "timeout"):
        catalog.VALIDATION_TESTS.labels(result=result)
    catalog.EXPORT_FAILURES.labels(signal="traces")
