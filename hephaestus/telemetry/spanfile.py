"""Spans as JSON lines in ``.hephaestus/traces.jsonl``: the embedded default with no collector.

``hephaestus trace`` reads this file; each line is one finished span in a flat, stable shape
that the Jaeger (OTLP JSON) reader produces too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

MAX_BYTES = 50 * 1024 * 1024


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as a flat JSON-able dict."""
    context = span.context
    assert context is not None  # a finished span always has one
    parent = span.parent
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
        "service": (span.resource.attributes.get("service.name") if span.resource else None),
    }


class SpanFileExporter(SpanExporter):
    """Appends spans to a JSON-lines file; rotates it once to ``.1`` past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans``; an I/O error is a failed export, never an exception."""
        lines = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans)
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and self.path.stat().st_size > self.max_bytes:
                    self.path.replace(self.path.with_suffix(self.path.suffix + ".1"))
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(lines)
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing is held open between exports."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Every export is written synchronously."""
        return True


def read_span_file(path: Path) -> Iterator[dict[str, Any]]:
    """The spans of ``path`` (and its rotated ``.1``), oldest first; bad lines are skipped."""
    for candidate in (path.with_suffix(path.suffix + ".1"), path):
        if not candidate.exists():
            continue
        with candidate.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue


def readable_span(record: dict[str, Any], resource: Resource) -> ReadableSpan:
    """Rebuild a finished span from its record, to hand it to this process's exporters."""
    sampled = TraceFlags(TraceFlags.SAMPLED)
    trace_id = int(record["trace_id"], 16)
    parent = record.get("parent_span_id")
    return ReadableSpan(
        name=record["name"],
        context=SpanContext(trace_id, int(record["span_id"], 16), False, sampled),
        parent=SpanContext(trace_id, int(parent, 16), True, sampled) if parent else None,
        resource=resource,
        attributes=record.get("attributes") or {},
        events=[
            Event(e["name"], e.get("attributes") or {}, e.get("time_ns"))
            for e in record.get("events") or []
        ],
        kind=SpanKind[record.get("kind") or "INTERNAL"],
        status=Status(
            StatusCode[record.get("status") or "UNSET"], record.get("status_description")
        ),
        start_time=record.get("start_ns"),
        end_time=record.get("end_ns"),
    )
