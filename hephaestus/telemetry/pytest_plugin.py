"""A pytest plugin that joins the agent's trace from inside the validation subprocess.

Loaded with ``-p hephaestus.telemetry.pytest_plugin``. When ``TRACEPARENT`` is set it opens
a ``pytest session`` span under the agent's ``execute_tool pytest`` span and one
``pytest test`` span per test, and writes them to the file named by ``HEPHAESTUS_SPAN_FILE``;
the agent then hands them to its own exporters (local file, OTLP).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hephaestus.telemetry.spanfile import SPAN_FILE_ENV, SpanFileExporter
from hephaestus.telemetry.tracing import CORRELATION_ATTRIBUTE

_KEY = pytest.StashKey[dict[str, Any]]()


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
    """Open the session span when the agent passed a trace context."""
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
    provider = _provider()
    tracer = provider.get_tracer("hephaestus.pytest")
    attributes = {CORRELATION_ATTRIBUTE: str(correlation_id)} if correlation_id else {}
    session = tracer.start_span("pytest session", context=parent, attributes=attributes)
    config.stash[_KEY] = {
        "provider": provider,
        "tracer": tracer,
        "session": session,
        "attributes": attributes,
        "counts": {},
    }


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """One span per test, from its call phase (or the phase that failed)."""
    state = _STATE["current"]
    if state is None or not (report.when == "call" or report.failed):
        return
    outcome = report.outcome
    state["counts"][outcome] = state["counts"].get(outcome, 0) + 1
    span: Span = state["tracer"].start_span(
        "pytest test",
        context=set_span_in_context(state["session"]),
        start_time=int(report.start * 1e9),
        attributes={
            **state["attributes"],
            "test.case.name": report.nodeid,
            "test.case.result.status": "pass" if report.passed else "fail",
            "hephaestus.test.phase": report.when,
        },
    )
    span.end(end_time=int(report.stop * 1e9))


_STATE: dict[str, dict[str, Any] | None] = {"current": None}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Make the state reachable from report hooks."""
    _STATE["current"] = session.config.stash.get(_KEY, None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the session span with the counts (every span is already on disk)."""
    state = session.config.stash.get(_KEY, None)
    if state is None:
        return
    span: Span = state["session"]
    span.set_attribute("process.exit.code", int(exitstatus))
    for outcome, count in state["counts"].items():
        span.set_attribute(f"hephaestus.tests.{outcome}", count)
    span.end()
    state["provider"].shutdown()
