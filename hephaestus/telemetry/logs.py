"""Structured logs: one JSON object a line, or a readable console line on a TTY.

Every record carries the cycle's correlation id, the current span's trace and span ids and
the stage, so a log line leads to its trace and its memory row.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry import trace

from hephaestus.telemetry.context import correlation_id_var, stage_var

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of ``record``: ids from context plus its ``extra`` values."""
    span_context = trace.get_current_span().get_span_context()
    fields: dict[str, Any] = {
        "timestamp": datetime.fromtimestamp(record.created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
        "correlation_id": getattr(record, "correlation_id", None) or correlation_id_var.get(),
        "trace_id": format(span_context.trace_id, "032x") if span_context.is_valid else None,
        "span_id": format(span_context.span_id, "016x") if span_context.is_valid else None,
        "stage": stage_var.get(),
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    if record.exc_info and record.exc_info[0] is not None:
        fields["error.type"] = record.exc_info[0].__name__
        fields["exception"] = logging.Formatter().formatException(record.exc_info)
    return fields


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise :func:`record_fields`; values JSON cannot hold become strings."""
        return json.dumps(record_fields(record), default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """``12:00:01 info    event  key=value …`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """A short, aligned line; ids are abbreviated."""
        fields = record_fields(record)
        stamp = fields.pop("timestamp")[11:19]
        level, event = fields.pop("level"), fields.pop("event")
        fields.pop("logger")
        fields.pop("span_id")
        exception = fields.pop("exception", None)
        if fields.get("trace_id"):
            fields["trace_id"] = fields["trace_id"][:8]
        if fields.get("correlation_id"):
            fields["correlation_id"] = fields["correlation_id"][:8]
        pairs = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        line = f"{stamp} {level:<7} {event}  {pairs}".rstrip()
        return f"{line}\n{exception}" if exception else line


class LogStream(Protocol):
    """Where log lines go: anything with ``write`` and ``flush`` (``isatty`` is optional)."""

    def write(self, text: str, /) -> int:
        """Write one formatted record."""

    def flush(self) -> None:
        """Flush what was written."""


def configure_logging(
    level: str = "info", fmt: str = "auto", stream: LogStream | None = None
) -> logging.Handler:
    """Route the ``hephaestus`` loggers to ``stream`` (stderr) as JSON or console lines.

    ``fmt="auto"`` picks the console format on a TTY and JSON otherwise. Returns the handler
    so callers (tests, the CLI) can remove or redirect it.
    """
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter() if fmt == "json" else ConsoleFormatter())
    handler.set_name("hephaestus")
    root = logging.getLogger("hephaestus")
    for old in [h for h in root.handlers if h.get_name() == "hephaestus"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.INFO))
    root.propagate = False
    # the SDK's exporters log every failed export attempt; the export-failure counter already
    # tells that story, so only their errors reach our stream, as structured lines
    sdk = logging.getLogger("opentelemetry")
    for old in [h for h in sdk.handlers if h.get_name() == "hephaestus"]:
        sdk.removeHandler(old)
    sdk.addHandler(handler)
    sdk.setLevel(logging.ERROR)
    sdk.propagate = False
    return handler


class StructuredLogger:
    """Fields as keyword arguments instead of stdlib's ``extra=``, on any stdlib logger.

    ``log.info("objective chosen", kind="docstring")`` writes the same JSON line as
    ``logger.info("objective chosen", extra={"kind": "docstring"})``; fields that would
    clash with a log record's own attributes are dropped rather than raising.
    """

    def __init__(
        self, name: str | logging.Logger = "hephaestus", correlation_id: str | None = None
    ) -> None:
        self._logger = name if isinstance(name, logging.Logger) else logging.getLogger(name)
        self._context: dict[str, Any] = {}
        self._correlation_id = correlation_id

    def set_correlation_id(self, correlation_id: str | None) -> None:
        """Stamp every later line of this logger with ``correlation_id``."""
        self._correlation_id = correlation_id

    def add_context(self, **fields: Any) -> None:
        """Add fields to every later line of this logger."""
        self._context.update(fields)

    def log_operation(self, operation: str, level: str = "info", **fields: Any) -> None:
        """Log ``operation`` as the event with ``fields`` at ``level``."""
        extra = {**self._context, **fields}
        if self._correlation_id:
            extra["correlation_id"] = self._correlation_id
        self._logger.log(
            _LEVELS.get(level, logging.INFO),
            operation,
            extra={k: v for k, v in extra.items() if k not in _STANDARD},
        )

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` at info level."""
        self.log_operation(event, "info", **fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log ``event`` at error level."""
        self.log_operation(event, "error", **fields)


class CycleLogBuffer(logging.Handler):
    """The log lines of the last ``cycles`` cycles (at most ``lines`` each), kept in memory.

    The service's trace view shows them next to the span tree; memory stays bounded
    however long the service runs.
    """

    def __init__(self, cycles: int = 100, lines: int = 200) -> None:
        super().__init__(logging.DEBUG)
        self.cycles, self.max_lines = cycles, lines
        self._by_cycle: collections.OrderedDict[str, collections.deque[dict[str, Any]]] = (
            collections.OrderedDict()
        )
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's fields under its correlation id."""
        fields = record_fields(record)
        correlation_id = fields.get("correlation_id")
        if not correlation_id:
            return
        if "exception" in fields:
            fields["exception"] = str(fields["exception"])[-4000:]
        with self._guard:
            lines = self._by_cycle.get(correlation_id)
            if lines is None:
                lines = self._by_cycle[correlation_id] = collections.deque(maxlen=self.max_lines)
                while len(self._by_cycle) > self.cycles:
                    self._by_cycle.popitem(last=False)
            lines.append(fields)

    def lines(self, correlation_id: str) -> list[dict[str, Any]]:
        """The kept lines of one cycle, oldest first (empty when none are kept)."""
        with self._guard:
            return list(self._by_cycle.get(correlation_id, ()))
