"""A pytest plugin that joins the agent's trace from inside the validation subprocess.

Loaded with ``-p hephaestus.telemetry.pytest_plugin``. When ``TRACEPARENT`` is set it opens
a ``pytest session`` span under the agent's ``execute_tool pytest`` span and one
``pytest test`` span per test, and writes them to the file named by ``HEPHAESTUS_SPAN_FILE``;
the agent then hands them to its own exporters (local file, OTLP).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hephaestus.telemetry.spanfile import SPAN_FILE_ENV, SpanFileExporter
from hephaestus.telemetry.tracing import CORRELATION_ATTRIBUTE

_PLUGIN_NAME = "hephaestus-trace-join"


def _provider() -> TracerProvider:
    """A provider writing to the file the agent named.

    The agent relays those spans to its own exporters, so no collector can hold us up.
    """
    provider = TracerProvider(
        resource=Resource.create({"hephaestus.process": "pytest"}), shutdown_on_exit=False
    )
    provider.add_span_processor(
        SimpleSpanProcessor(SpanFileExporter(Path(os.environ[SPAN_FILE_ENV])))
    )
    return provider


def pytest_configure(config: pytest.Config) -> None:
    """Join the agent's trace when it passed a trace context: register a :class:`_TraceJoin`."""
    carrier = {
        "traceparent": os.environ.get("TRACEPARENT", ""),
        "baggage": os.environ.get("BAGGAGE", ""),
    }
    if not carrier["traceparent"] or not os.environ.get(SPAN_FILE_ENV):
        return
    parent = W3CBaggagePropagator().extract(
        carrier, TraceContextTextMapPropagator().extract(carrier)
    )
    correlation_id = baggage.get_baggage(CORRELATION_ATTRIBUTE, parent)
    attributes = {CORRELATION_ATTRIBUTE: str(correlation_id)} if correlation_id else {}
    config.pluginmanager.register(_TraceJoin(_provider(), parent, attributes), _PLUGIN_NAME)


class _TraceJoin:
    """The session span and one span per test, for one pytest run (a plugin instance)."""

    def __init__(
        self, provider: TracerProvider, parent: Context, attributes: dict[str, str]
    ) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("hephaestus.pytest")
        self.attributes = attributes
        self.session = self.tracer.start_span(
            "pytest session", context=parent, attributes=attributes
        )
        self.counts: dict[str, int] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """One span per test, from its call phase (or the phase that failed)."""
        if not (report.when == "call" or report.failed):
            return
        outcome = report.outcome
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        span: Span = self.tracer.start_span(
            "pytest test",
            context=set_span_in_context(self.session),
            start_time=int(report.start * 1e9),
            attributes={
                **self.attributes,
                "test.case.name": report.nodeid,
                "test.case.result.status": "pass" if report.passed else "fail",
                "hephaestus.test.phase": report.when,
            },
        )
        span.end(end_time=int(report.stop * 1e9))

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        """Close the session span with the counts (every span is already on disk)."""
        self.session.set_attribute("process.exit.code", int(exitstatus))
        for outcome, count in self.counts.items():
            self.session.set_attribute(f"hephaestus.tests.{outcome}", count)
        self.session.end()
        self.provider.shutdown()
