"""Reads counters, gauges and histograms where prometheus-client keeps their values.

``collect()`` builds a ``Sample`` (a named tuple and a labels dict) for every bucket of
every histogram child on every scrape: most of the cost of a ``/metrics`` render. For the
three plain metric types this module reads each child's values where they are kept: the
children are listed under the parent's lock, as ``collect()`` lists them, and each value
is one attribute read (atomic under the GIL; ``collect()`` holds no lock across a
histogram's buckets either). Those are prometheus-client's private attributes, so a metric
is read this way only when it looks exactly as expected (the library's own class, one
process, no ``_created`` series, no gauge callback); for anything else :func:`read`
answers ``None`` and the encoders use ``collect()``. The encoders' tests compare the output
with prometheus-client's own, byte for byte, for both paths.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, metrics, values
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

# per sample of a child: its name and the labels it adds to the child's (a bucket's ``le``)
Layout = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


@dataclass(frozen=True, slots=True)
class Child:
    """One labelled series' values in its family's layout order, and exemplars if asked."""

    labelvalues: tuple[str, ...]
    values: list[float]
    exemplars: list[Any]


@dataclass(frozen=True, eq=False)
class Shape:
    """What one metric's children have in common: its header, label names and samples."""

    header: Metric  # as ``describe()`` gives it
    labelnames: tuple[str, ...]
    layout: Layout


@dataclass(frozen=True)
class Family:
    """A metric read directly: its shape and each child's values."""

    shape: Shape
    children: list[Child]


def collectors(registry: Collector) -> list[Collector] | None:
    """A registry's collectors in ``collect()``'s order, or ``None`` if that is unknown here."""
    if type(registry) is not CollectorRegistry:
        return None
    try:
        with registry._lock:
            if registry._target_info:
                return None
            return list(registry._collector_to_names)
    except AttributeError:
        return None


def read(collector: Collector, exemplars: bool) -> Family | None:
    """The collector's values (and ``exemplars`` if asked), or ``None``: use ``collect()``."""
    if type(collector) not in _READERS or metrics._use_created:
        return None
    if values.ValueClass is not values.MutexValue:  # multiprocess mode
        return None
    try:
        return _read(collector, exemplars)
    except AttributeError:  # a prometheus-client whose internals differ
        return None


def _read(metric: Any, exemplars: bool) -> Family | None:
    children: list[tuple[tuple[str, ...], Any]] = [((), metric)]
    if metric._is_parent():
        with metric._lock:
            children = list(metric._metrics.items())
    shape = _SHAPES.get(metric)
    if shape is None:
        shape = _SHAPES[metric] = Shape(metric.describe()[0], metric._labelnames, _layout(metric))
    family = Family(shape, [])
    read_child = _READERS[type(metric)]
    for labelvalues, child in children:
        if "_child_samples" in vars(child):  # a gauge whose value is a callback's
            return None
        family.children.append(Child(labelvalues, *read_child(child, exemplars)))
    return family


def _layout(metric: Any) -> Layout:
    name = metric._name
    if type(metric) is Counter:
        return ((name + "_total", ()),)
    if type(metric) is Gauge:
        return ((name, ()),)
    bounds = metric._upper_bounds
    buckets = tuple((name + "_bucket", (("le", floatToGoString(b)),)) for b in bounds)
    return buckets + ((name + "_count", ()),) + (((name + "_sum", ()),) if bounds[0] >= 0 else ())


def _counter(child: Counter, exemplars: bool) -> tuple[list[float], list[Any]]:
    value = child._value
    return [value._value], [value._exemplar] if exemplars else []


def _gauge(child: Gauge, _exemplars: bool) -> tuple[list[float], list[Any]]:
    return [child._value._value], []


def _histogram(child: Histogram, exemplars: bool) -> tuple[list[float], list[Any]]:
    buckets = child._buckets
    counts = list(itertools.accumulate([bucket._value for bucket in buckets]))
    counts.append(counts[-1])  # _count
    found = [bucket._exemplar for bucket in buckets] + [None] if exemplars else []
    if child._upper_bounds[0] >= 0:
        counts.append(child._sum._value)
        found += [None] if exemplars else []
    return counts, found


_SHAPES: weakref.WeakKeyDictionary[Collector, Shape] = weakref.WeakKeyDictionary()
_READERS: dict[type, Callable[[Any, bool], tuple[list[float], list[Any]]]] = {
    Counter: _counter,
    Gauge: _gauge,
    Histogram: _histogram,
}
