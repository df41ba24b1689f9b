"""Telemetry set-up: the tracer provider, the helpers pointed at it, the known series."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace.export import SpanExporter

from hephaestus import __version__
from hephaestus.config import TelemetryConfig
from hephaestus.telemetry import catalog
from hephaestus.telemetry.events import install_retry_hooks
from hephaestus.telemetry.instrument import configure
from hephaestus.telemetry.tracing import TracingHandle, build_tracer_provider

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
