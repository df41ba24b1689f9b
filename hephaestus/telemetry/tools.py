"""The span of a tool subprocess (the project's tests), and the spans recorded inside it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry.propagate import inject
from opentelemetry.trace import Span, Status, StatusCode

from hephaestus.telemetry.conventions import SPAN_FILE_ENV, TEST_SPANS_ENV
from hephaestus.telemetry.spanfile import read_span_file
from hephaestus.telemetry.spans import exemplar, mark_error

if TYPE_CHECKING:
    from hephaestus.telemetry.instrument import Instruments


@dataclass
class ToolRun:
    """The span of a tool subprocess; :meth:`env` carries the trace into the child."""

    span: Span
    instruments: Instruments
    span_file: Path | None = None

    def env(self) -> dict[str, str]:
        """``TRACEPARENT``/``BAGGAGE`` and the file the child records its spans in."""
        if self.instruments.relay is None:
            return {}
        if self.span_file is None:
            handle, name = tempfile.mkstemp(prefix="hephaestus-spans-", suffix=".jsonl")
            os.close(handle)
            self.span_file = Path(name)
        carrier: dict[str, str] = {}
        inject(carrier)
        return {
            SPAN_FILE_ENV: str(self.span_file),
            TEST_SPANS_ENV: self.instruments.test_spans,
            **{key.upper(): value for key, value in carrier.items()},
        }

    def result(self, result: str, exit_code: int | None = None) -> None:
        """Count the run by ``result`` (passed, failed, no_tests, timeout, error)."""
        self.span.set_attribute("hephaestus.tool.result", result)
        if exit_code is not None:
            self.span.set_attribute("process.exit.code", exit_code)
        if result not in ("passed", "no_tests"):
            self.span.set_status(Status(StatusCode.ERROR, result))
            self.span.set_attribute("error.type", result)
        self.instruments.metrics.validation_tests.labels(result=result).inc(
            exemplar=exemplar(self.span)
        )

    def collect(self) -> None:
        """Relay the child's spans to our exporters and remove its file."""
        relay = self.instruments.relay
        if self.span_file is None or relay is None:
            return
        with contextlib.suppress(OSError):
            relay(read_span_file(self.span_file))
        self.span_file.unlink(missing_ok=True)


@contextlib.contextmanager
def tool_span(instruments: Instruments, tool: str) -> Iterator[ToolRun]:
    """``execute_tool {tool}``: its span, its result metric, and the child's spans relayed."""
    with instruments.tracer.start_as_current_span(
        f"execute_tool {tool}",
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        run = ToolRun(span, instruments)
        try:
            yield run
        except BaseException as exc:
            mark_error(span, exc)
            raise
        finally:
            run.collect()
