"""Find one cycle's spans by correlation id or trace id: in the local span file or in Jaeger.

Both sources yield the flat records of :func:`hephaestus.telemetry.spanfile.span_record`, so
``hephaestus trace`` renders them the same way.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hephaestus.telemetry.conventions import CORRELATION_ATTRIBUTE

if TYPE_CHECKING:
    import httpx

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
MIN_PREFIX = 6


class TraceNotFound(LookupError):
    """No trace matches the id; the message says where it looked."""


def _select_trace(spans: Iterable[dict[str, Any]], any_id: str) -> list[dict[str, Any]]:
    """The spans of the one trace whose trace or correlation id is (or starts with) ``any_id``."""
    wanted = any_id.strip().lower()
    spans = list(spans)
    exact = {
        s["trace_id"]
        for s in spans
        if s["trace_id"] == wanted
        or str(s.get("attributes", {}).get(CORRELATION_ATTRIBUTE, "")).lower() == wanted
    }
    if not exact and len(wanted) >= MIN_PREFIX:
        exact = {
            s["trace_id"]
            for s in spans
            if s["trace_id"].startswith(wanted)
            or str(s.get("attributes", {}).get(CORRELATION_ATTRIBUTE, ""))
            .lower()
            .startswith(wanted)
        }
    if len(exact) > 1:
        raise TraceNotFound(f"{any_id!r} matches {len(exact)} traces; give more characters")
    if not exact:
        return []
    trace_id = exact.pop()
    return [s for s in spans if s["trace_id"] == trace_id]


def local_trace(span_file: Path, any_id: str) -> list[dict[str, Any]]:
    """The trace from the local span file, or :class:`TraceNotFound`."""
    if not span_file.exists():
        raise TraceNotFound(
            f"no local span file at {span_file}; run a cycle first, or pass "
            "--jaeger-url when traces go to Jaeger"
        )
    from hephaestus.telemetry.spanfile import read_span_file  # the SDK, only for this command

    spans = _select_trace(read_span_file(span_file), any_id)
    if not spans:
        raise TraceNotFound(f"no trace with correlation id or trace id {any_id!r} in {span_file}")
    return spans


def jaeger_trace(
    base_url: str,
    any_id: str,
    *,
    service: str = "hephaestus",
    lookback: timedelta = timedelta(days=7),
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> list[dict[str, Any]]:
    """The trace from Jaeger's API v3: by trace id directly, by correlation id via a search."""
    import httpx  # only this command talks HTTP; the others start without it

    wanted = any_id.strip().lower()
    with httpx.Client(
        base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
    ) as client:
        if _TRACE_ID.match(wanted):
            response = client.get(f"/api/v3/traces/{wanted}")
        else:
            now = datetime.now(UTC)
            response = client.get(
                "/api/v3/traces",
                params={
                    "query.service_name": service,
                    "query.attributes": json.dumps({CORRELATION_ATTRIBUTE: any_id}),
                    "query.start_time_min": (now - lookback).isoformat().replace("+00:00", "Z"),
                    "query.start_time_max": now.isoformat().replace("+00:00", "Z"),
                },
            )
    if response.status_code == 404:
        raise TraceNotFound(f"Jaeger at {base_url} has no trace for {any_id!r}")
    if response.status_code != 200:
        raise TraceNotFound(
            f"Jaeger at {base_url} answered HTTP {response.status_code}: {response.text[:200]}"
        )
    spans = _select_trace(_otlp_json_spans(response.json()), any_id)
    if not spans:
        raise TraceNotFound(f"Jaeger at {base_url} has no trace for {any_id!r}")
    return spans


def _otlp_json_spans(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten an OTLP/JSON document (Jaeger's ``{"result": {"resourceSpans": …}}``)."""
    root = document.get("result", document)
    records = []
    for resource_spans in root.get("resourceSpans", []):
        service = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                records.append(_otlp_span(span, service.get("service.name")))
    return records


def _otlp_span(span: dict[str, Any], service: Any) -> dict[str, Any]:
    status = span.get("status", {}).get("code", 0)
    status_name = {
        0: "UNSET",
        1: "OK",
        2: "ERROR",
        "STATUS_CODE_ERROR": "ERROR",
        "STATUS_CODE_OK": "OK",
    }.get(status, "UNSET")
    return {
        "trace_id": _hex_id(span.get("traceId", ""), 32),
        "span_id": _hex_id(span.get("spanId", ""), 16),
        "parent_span_id": _hex_id(span["parentSpanId"], 16) if span.get("parentSpanId") else None,
        "name": span.get("name", ""),
        "kind": str(span.get("kind", "")),
        "start_ns": int(span.get("startTimeUnixNano", 0)),
        "end_ns": int(span.get("endTimeUnixNano", 0)),
        "status": status_name,
        "status_description": span.get("status", {}).get("message"),
        "attributes": _attributes(span.get("attributes", [])),
        "events": [
            {
                "name": e.get("name"),
                "time_ns": int(e.get("timeUnixNano", 0)),
                "attributes": _attributes(e.get("attributes", [])),
            }
            for e in span.get("events", [])
        ],
        "service": service,
    }


def _hex_id(value: str, length: int) -> str:
    if re.fullmatch(rf"[0-9a-fA-F]{{{length}}}", value):
        return value.lower()
    try:
        return base64.b64decode(value).hex()
    except ValueError:
        return value


def _attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        value = item.get("value", {})
        for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
            if kind in value:
                out[item["key"]] = int(value[kind]) if kind == "intValue" else value[kind]
                break
    return out


KEY_ATTRIBUTES = (
    "hephaestus.outcome",
    "hephaestus.reason",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "error.type",
    "hephaestus.tool.result",
    "test.case.name",
    "hephaestus.tests.passed",
    "hephaestus.tests.failed",
)


def spans_of_trace(span_file: Path, trace_id: str) -> list[dict[str, Any]]:
    """Every span of ``trace_id`` in the local span file (a line is parsed only if it may match)."""
    found = []
    for candidate in (span_file.with_suffix(span_file.suffix + ".1"), span_file):
        if not candidate.exists():
            continue
        with candidate.open(encoding="utf-8") as handle:
            for line in handle:
                if trace_id not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("trace_id") == trace_id:
                    found.append(record)
    return found


def span_rows(spans: Iterable[dict[str, Any]], max_tests: int = 5) -> list[dict[str, Any]]:
    """The span tree flattened depth-first: each span with its depth, duration and key facts.

    Past ``max_tests`` test spans under one parent, only failing ones are listed, followed
    by a row counting the passing ones.
    """
    spans = sorted(spans, key=lambda s: s["start_ns"] or 0)
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parent_span_id")
        children.setdefault(parent if parent in ids else None, []).append(span)
    rows: list[dict[str, Any]] = []

    def walk(span: dict[str, Any], depth: int) -> None:
        attributes = span.get("attributes") or {}
        rows.append(
            {
                "depth": depth,
                "name": span["name"],
                "span_id": span["span_id"],
                "start_ns": span["start_ns"],
                "duration_ms": ((span["end_ns"] or 0) - (span["start_ns"] or 0)) / 1e6,
                "status": span.get("status") or "UNSET",
                "status_description": span.get("status_description"),
                "error_type": attributes.get("error.type"),
                "attributes": {k: attributes[k] for k in KEY_ATTRIBUTES if k in attributes},
            }
        )
        kids = children.get(span["span_id"], [])
        tests = [k for k in kids if k["name"] == "pytest test"]
        folded = 0
        if len(tests) > max_tests:
            folded = sum(k.get("status") != "ERROR" for k in tests)
            kids = [k for k in kids if k not in tests or k.get("status") == "ERROR"]
        for child in kids:
            walk(child, depth + 1)
        if folded:
            rows.append(_folded_row(folded, depth + 1, rows[-1]))

    for root in children.get(None, []):
        walk(root, 0)
    return rows


def _folded_row(count: int, depth: int, after: dict[str, Any]) -> dict[str, Any]:
    return {
        "depth": depth,
        "name": f"… {count} passing tests",
        "span_id": "",
        "start_ns": after["start_ns"],
        "duration_ms": 0.0,
        "status": "OK",
        "status_description": None,
        "error_type": None,
        "attributes": {},
        "folded": True,
    }
