"""``/cycles/<correlation id or trace id>``: one cycle's span tree and log lines in the browser.

Spans come from the local span file (or from Jaeger's API when a Jaeger URL is configured
and the file has none); log lines from the service's in-memory buffer of recent cycles.
The page is rendered on the server and needs no JavaScript.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx

from hephaestus.agent import CycleRunner, MemoryStoreError
from hephaestus.service.dashboard import HTML, TEMPLATES, Answer
from hephaestus.service.http import HTTPError
from hephaestus.telemetry.logs import CycleLogBuffer
from hephaestus.telemetry.trace_lookup import (
    TraceNotFound,
    jaeger_trace,
    local_trace,
    span_rows,
    spans_of_trace,
)

FLUSH_TIMEOUT_S = 1.0
ANY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class TraceView:
    """Finds a cycle by either id and renders its trace."""

    def __init__(
        self,
        runner: CycleRunner,
        span_file: Path,
        *,
        jaeger_url: str = "",
        logs: CycleLogBuffer | None = None,
    ) -> None:
        self.runner = runner
        self.span_file = span_file
        self.jaeger_url = jaeger_url.rstrip("/")
        self.logs = logs
        self.routes = {"/cycles/{cycle_id}": {"GET": self.page}}

    def page(self, request: Any) -> Answer:
        """The cycle's page; 404 with a page that says where it looked."""
        cycle_id = request.params.get("cycle_id", "")
        if not ANY_ID.match(cycle_id):
            raise HTTPError(
                HTTPStatus.NOT_FOUND, "a cycle id is a correlation id or a 32-digit trace id"
            )
        try:
            row = self.runner.memory.find(cycle_id)
        except MemoryStoreError as exc:
            raise HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, str(exc)) from None
        spans, problem = self._spans(row["trace_id"] if row else "", cycle_id)
        if row is None and not spans:
            return 404, self._render(None, [], problem or "no cycle with this id"), dict(HTML)
        return 200, self._render(row, spans, problem), dict(HTML)

    def _spans(self, trace_id: str, any_id: str) -> tuple[list[dict[str, Any]], str | None]:
        problem: str | None
        try:
            if trace_id:
                spans = spans_of_trace(self.span_file, trace_id)
                root = any(s.get("parent_span_id") is None for s in spans)
                if not root and self.runner.telemetry is not None:  # maybe still queued
                    self.runner.telemetry.tracing.flush_local(FLUSH_TIMEOUT_S)
                    spans = spans_of_trace(self.span_file, trace_id)
            else:  # not in memory: maybe a prefix, or a cycle of another process
                spans = local_trace(self.span_file, any_id)
        except TraceNotFound as exc:
            spans, problem = [], str(exc)
        else:
            problem = None if spans else f"no spans of this cycle in {self.span_file}"
        if not spans and self.jaeger_url:
            try:
                spans, problem = jaeger_trace(self.jaeger_url, trace_id or any_id), None
            except (TraceNotFound, httpx.HTTPError) as exc:
                problem = f"{problem}; {exc}"
        return spans, problem

    def _render(
        self, row: dict[str, Any] | None, spans: list[dict[str, Any]], problem: str | None
    ) -> str:
        rows = span_rows(spans)
        start = min((r["start_ns"] for r in rows), default=0)
        end = max((r["start_ns"] + r["duration_ms"] * 1e6 for r in rows), default=0)
        total = max(end - start, 1)
        for r in rows:  # a waterfall: where each span sits in the cycle
            r["offset_pct"] = round((r["start_ns"] - start) / total * 100, 2)
            r["width_pct"] = max(round(r["duration_ms"] * 1e6 / total * 100, 2), 0.3)
        trace_id = (row or {}).get("trace_id") or (spans[0]["trace_id"] if spans else "")
        correlation_id = (row or {}).get("correlation_id") or next(
            (
                s["attributes"]["hephaestus.correlation_id"]
                for s in spans
                if "hephaestus.correlation_id" in (s.get("attributes") or {})
            ),
            "",
        )
        logs = self.logs.lines(correlation_id) if self.logs and correlation_id else []
        return TEMPLATES.get_template("trace.html").render(
            row=row,
            spans=rows,
            logs=logs,
            problem=problem,
            trace_id=trace_id,
            correlation_id=correlation_id,
            jaeger=f"{self.jaeger_url}/trace/{trace_id}" if self.jaeger_url and trace_id else "",
            logs_kept=self.logs is not None,
        )
