"""A pytest plugin that joins the agent's trace from inside the validation subprocess.

Registered by the validation run's plugin (``hephaestus.agent.pytest_report``) when the
agent names a span file, or loaded on its own with ``-p hephaestus.telemetry.pytest_plugin``.
When ``TRACEPARENT`` is set (and sampled) it records a ``pytest session`` span under the
agent's ``execute_tool pytest`` span, with the count of each outcome, and a ``pytest test``
span for each failed test (for every test when ``HEPHAESTUS_TEST_SPANS=all``), and writes
them to the file named by ``HEPHAESTUS_SPAN_FILE``; the agent then hands them to its own
exporters (local file, OTLP). Passing tests are counted, not traced, by default: each span
costs the run, the relay and every exporter, and a suite of thousands would bury the
failures an operator opens the trace for.

It runs in every validation subprocess, so it is kept cheap: no OpenTelemetry SDK and no
prometheus-client (the W3C headers are parsed here, the records are the flat ones of
``hephaestus.telemetry.spanfile``), and spans are buffered and written at session end.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest

from hephaestus.telemetry.conventions import CORRELATION_ATTRIBUTE, SPAN_FILE_ENV, TEST_SPANS_ENV

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_BUFFER_BYTES = 512 * 1024  # a very long suite is written in chunks of about this size
_PLUGIN_NAME = "hephaestus-trace-join"


def parent_of(traceparent: str) -> tuple[str, str] | None:
    """``(trace id, span id)`` of a sampled W3C ``traceparent``, else ``None``."""
    match = _TRACEPARENT.match(traceparent.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or not int(flags, 16) & 1:
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


def baggage_value(header: str, key: str) -> str | None:
    """The value of ``key`` in a W3C ``baggage`` header (properties ignored)."""
    for member in header.split(","):
        name, sep, value = member.split(";", 1)[0].partition("=")
        if sep and unquote(name.strip()) == key:
            return unquote(value.strip())
    return None


def _span_id() -> str:
    return format(random.getrandbits(64) or 1, "016x")


@dataclass
class TraceJoin:
    """The session span and the tests' spans, for one pytest run (a plugin instance).

    Spans are span-file records, buffered until the session ends. ``every_test``: a span
    for each test, not only for the failed ones.
    """

    path: str
    trace_id: str
    parent_id: str
    attributes: dict[str, Any]
    every_test: bool = False
    span_id: str = field(default_factory=_span_id)
    start_ns: int = field(default_factory=time.time_ns)
    counts: dict[str, int] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    pending_bytes: int = 0

    def record(self, name: str, parent: str, start_ns: int, end_ns: int, **attributes: Any) -> None:
        """Buffer one finished span; write the buffer once it is large."""
        line = json.dumps(
            {
                "trace_id": self.trace_id,
                "span_id": self.span_id if name == "pytest session" else _span_id(),
                "parent_span_id": parent,
                "name": name,
                "kind": "INTERNAL",
                "start_ns": start_ns,
                "end_ns": end_ns,
                "status": "UNSET",
                "status_description": None,
                "attributes": {**self.attributes, **attributes},
                "events": [],
                "service": None,
            }
        )
        self.pending.append(line + "\n")
        self.pending_bytes += len(line) + 1
        if self.pending_bytes >= _BUFFER_BYTES:
            self.write()

    def write(self) -> None:
        """Append the buffered spans to the span file (an I/O error loses them, quietly)."""
        if not self.pending:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write("".join(self.pending))
        except OSError:
            pass
        self.pending.clear()
        self.pending_bytes = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count each test, from its call phase (or the phase that failed); trace the failed."""
        if not (report.when == "call" or report.failed):
            return
        self.counts[report.outcome] = self.counts.get(report.outcome, 0) + 1
        if not (report.failed or self.every_test):
            return
        self.record(
            "pytest test",
            self.span_id,
            int(report.start * 1e9),
            int(report.stop * 1e9),
            **{
                "test.case.name": report.nodeid,
                "test.case.result.status": "pass" if report.passed else "fail",
                "hephaestus.test.phase": report.when,
            },
        )

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        """End the session span with the counts and write every buffered span."""
        counts = {f"hephaestus.tests.{outcome}": n for outcome, n in self.counts.items()}
        self.record(
            "pytest session",
            self.parent_id,
            self.start_ns,
            time.time_ns(),
            **{"process.exit.code": int(exitstatus), **counts},
        )
        self.write()


def pytest_configure(config: pytest.Config) -> None:
    """Join the agent's trace when it passed a sampled one: register a :class:`TraceJoin`."""
    path = os.environ.get(SPAN_FILE_ENV)
    parent = parent_of(os.environ.get("TRACEPARENT", ""))
    if not path or parent is None or config.pluginmanager.has_plugin(_PLUGIN_NAME):
        return
    correlation_id = baggage_value(os.environ.get("BAGGAGE", ""), CORRELATION_ATTRIBUTE)
    attributes = {CORRELATION_ATTRIBUTE: correlation_id} if correlation_id else {}
    every_test = os.environ.get(TEST_SPANS_ENV) == "all"
    join = TraceJoin(path, *parent, attributes=attributes, every_test=every_test)
    config.pluginmanager.register(join, _PLUGIN_NAME)
