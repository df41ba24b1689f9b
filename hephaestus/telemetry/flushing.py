"""Exports that are counted, and a shutdown that never waits on a collector twice.

:class:`CountingExporter` counts failed exports in ``hephaestus_telemetry_export_failures_total``
and remembers how the collector answered, so :func:`shutdown_processors` can give a collector
that already failed (or has not answered its first export yet) no more time at exit: a dead
or silent collector costs ``hephaestus run`` nothing at the end, as it costs a cycle nothing.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hephaestus.telemetry.catalog import Metrics, default_metrics

_LOG = logging.getLogger("hephaestus.telemetry")


class CountingExporter(SpanExporter):
    """Wraps an exporter: failures (results or exceptions) are counted, never raised.

    It also tracks the collector's health: whether any export succeeded, whether the last
    one failed, and when the export in flight (if any) started.
    """

    def __init__(
        self,
        inner: SpanExporter,
        signal: str = "traces",
        metrics: Metrics | None = None,
        attempt_timeout: float = math.inf,
    ) -> None:
        self.inner = inner
        self.attempt_timeout = attempt_timeout
        self._failures = (metrics or default_metrics()).export_failures.labels(signal=signal)
        self._lock = threading.Lock()
        self._attempt_started: float | None = None
        self._answered = False
        self._last_failed = False
        self._abandoned = False
        self._shut = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the wrapped exporter and count a failure."""
        with self._lock:
            if self._abandoned:
                result = SpanExportResult.FAILURE
            else:
                self._attempt_started = time.monotonic()
        if not self._abandoned:
            try:
                result = self.inner.export(spans)
            except Exception:
                result = SpanExportResult.FAILURE
        succeeded = result is SpanExportResult.SUCCESS
        with self._lock:
            self._attempt_started = None
            self._answered = self._answered or succeeded
            self._last_failed = not succeeded
        if not succeeded:
            self._failures.inc()
        return result

    def flush_budget(self) -> float:
        """Seconds a shutdown flush may still spend on this collector.

        A fresh attempt when its last export succeeded (or none was made); what is left of
        the attempt in flight when the collector answered before; nothing when the last
        export failed or its first export is still unanswered.
        """
        with self._lock:
            if self._attempt_started is not None:
                if not self._answered:
                    return 0.0
                return max(0.0, self._attempt_started + self.attempt_timeout - time.monotonic())
            return 0.0 if self._last_failed else self.attempt_timeout

    def abandon(self) -> None:
        """Give up on this collector: stop its retries; later exports fail at once."""
        with self._lock:
            self._abandoned = True
        self.shutdown()

    def shutdown(self) -> None:
        """Shut the wrapped exporter down (once)."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


@dataclass
class Remote:
    """A batch processor sending to a collector, and its counting exporter."""

    processor: SpanProcessor
    exporter: CountingExporter


def within(timeout: float, call: Callable[[], object]) -> bool:
    """Run ``call`` on a daemon thread; ``True`` if it returned (truthy) within ``timeout``."""
    outcome: list[object] = []
    worker = threading.Thread(
        target=lambda: outcome.append(call()), name="hephaestus-telemetry-flush", daemon=True
    )
    worker.start()
    worker.join(max(0.0, timeout))
    return bool(outcome) and outcome[0] is not False


def shutdown_processors(
    local: SpanProcessor | None,
    remotes: Sequence[Remote],
    others: Sequence[SpanProcessor],
    deadline: float,
) -> bool:
    """Flush and shut every processor down within ``deadline``; ``True`` if nothing was lost.

    The local span file goes first: it needs no network. Each collector then gets what its
    :meth:`CountingExporter.flush_budget` allows; one that gets nothing is abandoned on a
    background thread, so no one waits on it.
    """
    ends = time.monotonic() + deadline

    def left() -> float:
        return max(0.0, ends - time.monotonic())

    complete = True
    if local is not None:
        complete = within(left(), local.force_flush) and within(left(), local.shutdown)
    for remote in remotes:
        budget = min(left(), remote.exporter.flush_budget())
        if budget > 0 and within(budget, remote.processor.force_flush):
            complete = within(left(), remote.processor.shutdown) and complete
            continue
        complete = False
        _LOG.warning(
            "the collector did not answer; spans still queued for it are dropped at exit",
            extra={"flush_budget_s": round(budget, 3)},
        )
        threading.Thread(
            target=_abandon, args=(remote,), name="hephaestus-telemetry-abandon", daemon=True
        ).start()
    for processor in others:
        complete = within(left(), processor.shutdown) and complete
    return complete


def _abandon(remote: Remote) -> None:
    remote.exporter.abandon()
    remote.processor.shutdown()
