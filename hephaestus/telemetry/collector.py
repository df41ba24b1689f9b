"""MetricsCollector: ad-hoc measurements with summaries whose memory does not grow with use.

Each series (a name and its tags) keeps streaming aggregates — count, sum, min, max, latest
— and a DDSketch (relative-error quantiles in a bounded number of bins), so a million
records cost what a thousand do. The number of series is capped: records of further
name/tag sets go to one overflow series, with a warning. A name that the metrics catalog
declares also feeds that Prometheus metric (its tags are the metric's labels), so
``/metrics`` shows it without a second copy being kept for export.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddsketch import LogCollapsingLowestDenseDDSketch
from prometheus_client import Counter, Histogram

from hephaestus.telemetry.catalog import SPECS, Metrics, default_metrics

OVERFLOW = "collector_overflow"
_LOG = logging.getLogger("hephaestus.telemetry.collector")
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class _Series:
    """Streaming aggregates of one series, in constant space."""

    sketch: LogCollapsingLowestDenseDDSketch
    count: int = 0
    total: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    latest: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.latest = value
        self.sketch.add(value)

    def summary(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "sum": self.total,
            "avg": self.total / self.count,
            "min": self.minimum,
            "max": self.maximum,
            "latest": self.latest,
            "p95": float(self.sketch.get_quantile_value(0.95) or 0.0),
        }


@dataclass
class MetricsCollector:
    """Timers and recorded values, summarised per name and tags; safe to share between threads.

    ``max_series`` caps distinct name/tag sets, ``max_timers`` the timers running at once
    (the oldest is dropped, with a warning), ``relative_accuracy`` and ``bin_limit`` size
    each quantile sketch.
    """

    max_series: int = 1000
    max_timers: int = 10_000
    relative_accuracy: float = 0.01
    bin_limit: int = 1024
    feed_catalog: bool = True
    metrics: Metrics | None = None  # the catalog fed; default: on the default registry
    clock: Callable[[], float] = time.perf_counter
    _series: dict[SeriesKey, _Series] = field(default_factory=dict, repr=False)
    _timers: collections.OrderedDict[str, tuple[SeriesKey, float]] = field(
        default_factory=collections.OrderedDict, repr=False
    )
    _ids: Iterator[int] = field(default_factory=itertools.count, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _warned: bool = field(default=False, repr=False)

    def start_timer(self, name: str, tags: Mapping[str, Any] | None = None) -> str:
        """Start timing one operation; pass the returned id to :meth:`end_timer`.

        Each call gets its own id, so concurrent operations of the same name never mix.
        """
        key = _key(name, tags)
        with self._lock:
            timer_id = f"{name}#{next(self._ids)}"
            self._timers[timer_id] = (key, self.clock())
            if len(self._timers) > self.max_timers:
                dropped, _ = self._timers.popitem(last=False)
                _LOG.warning(
                    "too many running timers; dropped the oldest",
                    extra={"timer": dropped, "max_timers": self.max_timers},
                )
        return timer_id

    def end_timer(self, timer_id: str) -> float:
        """Stop the timer, record its duration in seconds under its name and tags, return it."""
        with self._lock:
            started = self._timers.pop(timer_id, None)
        if started is None:
            raise KeyError(f"no running timer {timer_id!r}; use the id start_timer returned")
        key, began = started
        elapsed = max(0.0, self.clock() - began)
        self._record(key, elapsed)
        return elapsed

    @contextlib.contextmanager
    def timer(self, name: str, tags: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Time the ``with`` block (recorded even when it raises)."""
        timer_id = self.start_timer(name, tags)
        try:
            yield
        finally:
            self.end_timer(timer_id)

    def record_metric(self, name: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        """Record one value of ``name`` with ``tags``."""
        self._record(_key(name, tags), float(value))

    def _record(self, key: SeriesKey, value: float) -> None:
        if self.feed_catalog:
            _feed_catalog(self.metrics or default_metrics(), key, value)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._new_series(key)
            series.add(value)

    def _new_series(self, key: SeriesKey) -> _Series:
        if len(self._series) >= self.max_series:
            if not self._warned:
                self._warned = True
                _LOG.warning(
                    "metrics collector series limit reached; further name/tag sets go to "
                    f"{OVERFLOW}",
                    extra={"max_series": self.max_series, "first_dropped": _label(key)},
                )
            key = (OVERFLOW, ())
            if key in self._series:
                return self._series[key]
        sketch = LogCollapsingLowestDenseDDSketch(self.relative_accuracy, self.bin_limit)
        series = self._series[key] = _Series(sketch)
        return series

    def get_summary(self) -> dict[str, dict[str, Any]]:
        """Per series (``name{tag=value,…}``): count, sum, avg, min, max, latest and p95."""
        with self._lock:
            return {
                _label(key): {"name": key[0], "tags": dict(key[1]), **series.summary()}
                for key, series in sorted(self._series.items())
            }

    def export_metrics(self, path: Path) -> Path:
        """Write the summary as JSON to ``path`` atomically; return the path."""
        document = {"exported_at": time.time(), "metrics": self.get_summary()}
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2)
            Path(temporary).replace(path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path


def _key(name: str, tags: Mapping[str, Any] | None) -> SeriesKey:
    if not name:
        raise ValueError("a metric needs a non-empty name")
    return name, tuple(sorted((str(k), str(v)) for k, v in (tags or {}).items()))


def _label(key: SeriesKey) -> str:
    name, tags = key
    return f"{name}{{{','.join(f'{k}={v}' for k, v in tags)}}}" if tags else name


def _feed_catalog(metrics: Metrics, key: SeriesKey, value: float) -> None:
    name, tags = key
    spec = SPECS.get(name)
    if spec is None or name == "stamina_retries_total":
        return
    if set(dict(tags)) != set(spec.labels):
        raise ValueError(
            f"{name} is a catalog metric with labels ({', '.join(spec.labels) or 'none'}); "
            f"tags {sorted(dict(tags))} do not match"
        )
    metric = metrics.by_name()[name]
    if isinstance(metric, Histogram):
        (metric.labels(**dict(tags)) if tags else metric).observe(value)
    elif isinstance(metric, Counter):
        (metric.labels(**dict(tags)) if tags else metric).inc(value)
    else:
        (metric.labels(**dict(tags)) if tags else metric).set(value)
