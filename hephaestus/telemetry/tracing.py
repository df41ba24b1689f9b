"""Tracer provider setup: resource, sampler, batch export to OTLP and/or the local span file.

Exports run on the batch processor's thread, so a dead or slow collector never slows a
cycle; a failed export increments ``hephaestus_telemetry_export_failures_total``, and
:meth:`TracingHandle.shutdown` returns within its deadline whatever the collector does.
"""

from __future__ import annotations

import atexit
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)

from hephaestus import __version__
from hephaestus.config import TelemetryConfig
from hephaestus.telemetry.catalog import Metrics, default_metrics
from hephaestus.telemetry.context import correlation_id_var
from hephaestus.telemetry.conventions import CORRELATION_ATTRIBUTE
from hephaestus.telemetry.flushing import CountingExporter, Remote, shutdown_processors
from hephaestus.telemetry.spanfile import SpanFileExporter, readable_span

EXIT_DEADLINE = 2.0  # seconds an un-closed handle may spend flushing at interpreter exit
INSTANCE_ID = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class CorrelationProcessor(SpanProcessor):
    """Stamps ``hephaestus.correlation_id`` on every span started inside a cycle."""

    def on_start(self, span, parent_context=None) -> None:  # noqa: ANN001 - SDK signature
        """Copy the cycle's correlation id onto the span."""
        correlation_id = correlation_id_var.get()
        if correlation_id:
            span.set_attribute(CORRELATION_ATTRIBUTE, correlation_id)


def otlp_target(config: TelemetryConfig, env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(traces endpoint URL, protocol)``, or ``None`` for no OTLP.

    The endpoint is read from ``env`` (not from ``os.environ`` behind its back): the
    signal-specific ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used as given, the base
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` and ``telemetry.otlp_endpoint`` get ``/v1/traces``.
    """
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or config.otlp_protocol
    )
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], protocol
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or config.otlp_endpoint
    if base:
        return _resolved(base, protocol), protocol
    return None


def _resolved(endpoint: str, protocol: str) -> str:
    if protocol == "grpc" or endpoint.rstrip("/").endswith("/v1/traces"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


def _otlp_exporter(endpoint: str, protocol: str, timeout: float) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=endpoint, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, timeout=timeout)


@dataclass
class TracingHandle:
    """The configured provider, the exporters in use and a bounded shutdown."""

    provider: TracerProvider
    exporters: list[str] = field(default_factory=list)
    span_file: Path | None = None
    processors: list[SpanProcessor] = field(default_factory=list)
    local_processor: SpanProcessor | None = None
    remotes: list[Remote] = field(default_factory=list)
    _closed: bool = False

    def __post_init__(self) -> None:
        # the provider's own exit hook would wait on a dead collector; this one is bounded
        atexit.register(self.shutdown, EXIT_DEADLINE)

    def flush_local(self, timeout: float) -> bool:
        """Write the spans still queued for the local span file, waiting at most ``timeout``."""
        if self.local_processor is None:
            return True
        return bool(self.local_processor.force_flush(int(timeout * 1000)))

    def relay(self, records: Iterable[dict[str, Any]]) -> int:
        """Hand spans recorded by a subprocess to this process's exporters; return the count.

        The subprocess only writes a local file, so a dead or slow collector can never hold
        it up; the export happens here, in the background, like any of our spans.
        """
        resource = self.provider.resource.merge(Resource({"hephaestus.process": "pytest"}))
        count = 0
        for record in records:
            try:
                span = readable_span(record, resource)
            except (KeyError, ValueError, TypeError):
                continue
            for processor in self.processors:
                processor.on_end(span)
            count += 1
        return count

    def shutdown(self, deadline: float = 5.0) -> bool:
        """Flush and shut down within ``deadline`` seconds; ``True`` if nothing was lost.

        A collector whose last export failed, or whose first export is still unanswered,
        gets no more time: see :func:`~hephaestus.telemetry.flushing.shutdown_processors`.
        """
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self.shutdown)
        remote = {id(r.processor) for r in self.remotes}
        others = [
            p for p in self.processors if p is not self.local_processor and id(p) not in remote
        ]
        return shutdown_processors(self.local_processor, self.remotes, others, deadline)


def build_tracer_provider(
    config: TelemetryConfig,
    span_file: Path | None,
    env: Mapping[str, str] | None = None,
    extra_exporter: SpanExporter | None = None,
    metrics: Metrics | None = None,
) -> TracingHandle:
    """A tracer provider exporting to OTLP (if configured) and the local span file.

    ``extra_exporter`` (tests: an in-memory exporter) is attached with a simple processor;
    failed exports are counted in ``metrics`` (default: the default registry's).
    """
    metrics = metrics or default_metrics()
    env = os.environ if env is None else env
    resource = Resource.create(
        {  # explicit attributes beat the SDK's env detector: read it here
            "service.name": env.get("OTEL_SERVICE_NAME") or "hephaestus",
            "service.version": __version__,
            "service.instance.id": INSTANCE_ID,
            "deployment.environment.name": config.environment,
        }
    )
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(CorrelationProcessor())
    handle = TracingHandle(provider=provider)
    target = otlp_target(config, env) if config.enabled else None
    if target is not None:
        endpoint, protocol = target
        exporter = CountingExporter(
            _otlp_exporter(endpoint, protocol, config.export_timeout),
            metrics=metrics,
            attempt_timeout=config.export_timeout,
        )
        processor = _batch(exporter, config)
        _add(handle, processor)
        handle.remotes.append(Remote(processor, exporter))
        handle.exporters.append(f"otlp/{protocol}")
    if config.enabled and span_file is not None and config.local_traces:
        local = CountingExporter(SpanFileExporter(span_file), metrics=metrics)
        handle.local_processor = _batch(local, config)
        _add(handle, handle.local_processor)
        handle.exporters.append("file")
        handle.span_file = span_file
    if extra_exporter is not None:
        _add(handle, SimpleSpanProcessor(CountingExporter(extra_exporter, metrics=metrics)))
        handle.exporters.append("extra")
    return handle


def _add(handle: TracingHandle, processor: SpanProcessor) -> None:
    handle.provider.add_span_processor(processor)
    handle.processors.append(processor)


def _batch(exporter: CountingExporter, config: TelemetryConfig) -> BatchSpanProcessor:
    return BatchSpanProcessor(
        exporter,
        max_queue_size=config.max_queue_size,
        schedule_delay_millis=config.schedule_delay * 1000,
        export_timeout_millis=config.export_timeout * 1000,
    )
