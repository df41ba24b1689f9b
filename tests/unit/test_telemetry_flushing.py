"""How much time a shutdown gives a collector, from how the collector has answered.

The wrapped exporter here is a stand-in whose answers the test controls (a gate it waits
on), because the point is the order of events, not the wire; the wire is covered by
tests/integration/test_otlp_export.py against a real receiver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanContext, TraceFlags

from hephaestus.telemetry.flushing import CountingExporter, Remote, shutdown_processors

ATTEMPT = 30.0  # one export attempt may take this long; no test waits for it


class GatedCollector(SpanExporter):
    """Answers each export with ``result`` once ``gate`` opens (at once if it is open)."""

    def __init__(self, result: SpanExportResult = SpanExportResult.SUCCESS) -> None:
        self.result = result
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.exported: list[int] = []
        self.shut = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.started.set()
        self.gate.wait()
        self.exported.append(len(spans))
        return self.result

    def shutdown(self) -> None:
        self.shut.set()
        self.gate.set()  # like the OTLP exporters: shutdown aborts a retry wait


def span() -> ReadableSpan:
    sampled = TraceFlags(TraceFlags.SAMPLED)
    return ReadableSpan(name="s", context=SpanContext(1, 1, False, sampled))


def export_in_background(exporter: CountingExporter) -> threading.Thread:
    worker = threading.Thread(target=exporter.export, args=([span()],), daemon=True)
    worker.start()
    return worker


def test_a_collector_that_answered_gets_one_fresh_attempt():
    exporter = CountingExporter(GatedCollector(), attempt_timeout=ATTEMPT)
    assert exporter.flush_budget() == ATTEMPT  # nothing tried yet
    exporter.export([span()])
    assert exporter.flush_budget() == ATTEMPT


def test_a_collector_whose_last_export_failed_gets_nothing():
    collector = GatedCollector(SpanExportResult.FAILURE)
    exporter = CountingExporter(collector, attempt_timeout=ATTEMPT)
    exporter.export([span()])
    assert exporter.flush_budget() == 0.0
    collector.result = SpanExportResult.SUCCESS  # it came back: the next flush may try
    exporter.export([span()])
    assert exporter.flush_budget() == ATTEMPT


def test_a_first_export_still_unanswered_gets_nothing():
    collector = GatedCollector()
    collector.gate.clear()
    exporter = CountingExporter(collector, attempt_timeout=ATTEMPT)
    worker = export_in_background(exporter)
    assert collector.started.wait(10)
    assert exporter.flush_budget() == 0.0
    collector.gate.set()
    worker.join(10)


def test_an_export_in_flight_to_a_collector_that_answered_before_gets_what_is_left():
    collector = GatedCollector()
    exporter = CountingExporter(collector, attempt_timeout=ATTEMPT)
    exporter.export([span()])
    collector.gate.clear()
    collector.started.clear()
    worker = export_in_background(exporter)
    assert collector.started.wait(10)
    assert 0.0 < exporter.flush_budget() <= ATTEMPT
    collector.gate.set()
    worker.join(10)
    assert exporter.flush_budget() == ATTEMPT


def test_an_abandoned_collector_is_shut_down_and_sent_nothing_more():
    collector = GatedCollector()
    exporter = CountingExporter(collector, attempt_timeout=ATTEMPT)
    exporter.abandon()
    assert collector.shut.is_set()
    assert exporter.export([span()]) is SpanExportResult.FAILURE
    assert collector.exported == []
    exporter.shutdown()  # a second shutdown (the processor's) is harmless


def batch(exporter: CountingExporter) -> BatchSpanProcessor:
    return BatchSpanProcessor(exporter, schedule_delay_millis=60_000)


def test_shutdown_leaves_a_silent_collector_behind_and_still_flushes_the_local_file():
    silent, local = GatedCollector(), GatedCollector()
    silent.gate.clear()
    remote = CountingExporter(silent, attempt_timeout=ATTEMPT)
    remote_processor, local_processor = batch(remote), batch(CountingExporter(local))
    for processor in (remote_processor, local_processor):
        processor.on_end(span())
    stuck = export_in_background(remote)  # the collector never answers this one
    assert silent.started.wait(10)

    started = time.monotonic()
    complete = shutdown_processors(local_processor, [Remote(remote_processor, remote)], [], 60)
    closing = time.monotonic() - started

    assert not complete  # spans for the collector were dropped, and it says so
    assert local.exported == [1]  # the local file got its span
    assert closing < ATTEMPT / 2  # it did not wait on the collector's attempt
    assert silent.shut.wait(10)  # the collector was shut down in the background
    stuck.join(10)


def test_shutdown_flushes_a_healthy_collector():
    collector = GatedCollector()
    exporter = CountingExporter(collector, attempt_timeout=ATTEMPT)
    processor = batch(exporter)
    processor.on_end(span())
    assert shutdown_processors(None, [Remote(processor, exporter)], [], 60)
    assert collector.exported == [1]
    assert collector.shut.is_set()
