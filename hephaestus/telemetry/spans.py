"""Small span helpers shared by the instruments: exemplars, errors, events on the current span."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode


def error_type(exc: BaseException) -> str:
    """The low-cardinality ``error.type`` of ``exc``: its own, or its class name."""
    return getattr(exc, "error_type", None) or type(exc).__name__


def exemplar(span: Span | None = None) -> dict[str, str] | None:
    """``{trace_id, span_id}`` of ``span`` (default: the current one), if it is recording."""
    span_context = (span or trace.get_current_span()).get_span_context()
    if not span_context.is_valid or not span_context.trace_flags.sampled:
        return None
    return {
        "trace_id": format(span_context.trace_id, "032x"),
        "span_id": format(span_context.span_id, "016x"),
    }


def mark_error(span: Span, exc: BaseException) -> str:
    """Record ``exc`` on ``span`` (status ERROR, ``error.type``); return the error type."""
    kind = error_type(exc)
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
    span.set_attribute("error.type", kind)
    return kind


def add_event(name: str, attributes: Mapping[str, Any]) -> None:
    """Add an event to the current span (retries, breaker transitions)."""
    trace.get_current_span().add_event(name, dict(attributes))


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Set attributes on the current span (a stage's findings: test counts, prompt fitting)."""
    trace.get_current_span().set_attributes(dict(attributes))
