"""A pytest plugin that joins the agent's trace from inside the validation subprocess.

Loaded with ``-p hephaestus.telemetry.pytest_plugin``. When ``TRACEPARENT`` is set it opens
a ``pytest session`` span under the agent's ``execute_tool pytest`` span and one
``pytest test`` span per test, exported like the agent's own spans (the span file named by
``HEPHAESTUS_SPAN_FILE`` and/or OTLP from the standard ``OTEL_*`` variables).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hephaestus.telemetry.spanfile import SpanFileExporter
from hephaestus.telemetry.tracing import CORRELATION_ATTRIBUTE

SPAN_FILE_ENV = "HEPHAESTUS_SPAN_FILE"
# How long the test run may wait for its spans to leave: a dead or silent collector must not
# hold the validation subprocess (and so the cycle) for the exporter's whole timeout.
FLUSH_DEADLINE = 0.5
_KEY = pytest.StashKey[dict[str, Any]]()


def _provider() -> TracerProvider:
    service = os.environ.get("OTEL_SERVICE_NAME") or "hephaestus"
    provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                        "hephaestus.process": "pytest"}),
                              shutdown_on_exit=False)  # no unbounded flush at exit
    if os.environ.get(SPAN_FILE_ENV):
        provider.add_span_processor(SimpleSpanProcessor(
            SpanFileExporter(Path(os.environ[SPAN_FILE_ENV]))))
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"):
        protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                    or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=3)))
    return provider


def pytest_configure(config: pytest.Config) -> None:
    """Open the session span when the agent passed a trace context."""
    carrier = {"traceparent": os.environ.get("TRACEPARENT", ""),
               "baggage": os.environ.get("BAGGAGE", "")}
    if not carrier["traceparent"]:
        return
    parent = W3CBaggagePropagator().extract(carrier,
                                            TraceContextTextMapPropagator().extract(carrier))
    correlation_id = baggage.get_baggage(CORRELATION_ATTRIBUTE, parent)
    provider = _provider()
    tracer = provider.get_tracer("hephaestus.pytest")
    attributes = {CORRELATION_ATTRIBUTE: str(correlation_id)} if correlation_id else {}
    session = tracer.start_span("pytest session", context=parent, attributes=attributes)
    config.stash[_KEY] = {"provider": provider, "tracer": tracer, "session": session,
                          "attributes": attributes, "counts": {}}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """One span per test, from its call phase (or the phase that failed)."""
    state = _STATE["current"]
    if state is None or not (report.when == "call" or report.failed):
        return
    outcome = report.outcome
    state["counts"][outcome] = state["counts"].get(outcome, 0) + 1
    span: Span = state["tracer"].start_span(
        "pytest test", context=set_span_in_context(state["session"]),
        start_time=int(report.start * 1e9),
        attributes={**state["attributes"], "test.case.name": report.nodeid,
                    "test.case.result.status": "pass" if report.passed else "fail",
                    "hephaestus.test.phase": report.when})
    span.end(end_time=int(report.stop * 1e9))


_STATE: dict[str, dict[str, Any] | None] = {"current": None}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Make the state reachable from report hooks."""
    _STATE["current"] = session.config.stash.get(_KEY, None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the session span with the counts and flush within ``FLUSH_DEADLINE``."""
    state = session.config.stash.get(_KEY, None)
    if state is None:
        return
    span: Span = state["session"]
    span.set_attribute("process.exit.code", int(exitstatus))
    for outcome, count in state["counts"].items():
        span.set_attribute(f"hephaestus.tests.{outcome}", count)
    span.end()
    worker = threading.Thread(target=state["provider"].shutdown, daemon=True)
    worker.start()
    worker.join(FLUSH_DEADLINE)
