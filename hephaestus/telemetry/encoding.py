"""Prometheus text and OpenMetrics encoders that format each series' name and labels once.

prometheus-client's encoders validate and escape every label of every sample on every
scrape. Our label sets are bounded (the catalog's), so these encoders remember the
formatted ``name{labels}`` of each series and the header lines of each metric: a scrape
only formats values. Counters, gauges and histograms are read without ``collect()`` (see
:mod:`~hephaestus.telemetry.readout`), and a series' lines are kept until its values
change, so a scrape formats only what changed since the last one. Their output is
byte-identical to prometheus-client's for the default (``underscores``) escaping, which a
test checks; any other negotiated format keeps the library's encoder.
"""

from __future__ import annotations

import functools
import math
import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import exposition
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from hephaestus.telemetry import readout

Encoder = Callable[[Collector], bytes]
MAX_REMEMBERED = 20_000  # series and values; past this the memo starts over
_TEXT_TYPES = {
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
    "unknown": "untyped",
}
# OpenMetrics sample names are escaped with the label-name alphabet (no colon)
_LABEL_RUNE = re.compile(r"[^a-zA-Z_]")
_LABEL_TAIL_RUNE = re.compile(r"[^a-zA-Z0-9_]")
_TEXT_APART = ("_created", "_gsum", "_gcount")  # the text format lists these as gauges, last


def _escaped(value: str, quote: bool = True) -> str:
    value = value.replace("\\", r"\\").replace("\n", r"\n")
    return value.replace('"', r"\"") if quote else value


def _label_string(labels: dict[str, str]) -> str:
    return ",".join(
        f'{openmetrics.escape_label_name(k)}="{_escaped(v)}"' for k, v in sorted(labels.items())
    )


_Chunk = tuple[bytes, list[Any], str, list[str]]


_ZERO = ("0.0", "-0.0")


class _Memo:
    """What a render can reuse, bounded: formatted values, series prefixes and children's lines."""

    def __init__(self, prefix: Callable[[str, dict[str, str]], str]) -> None:
        self._make_prefix = prefix
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._values: dict[float, str] = {}
        # (shape, label values) -> the child's values (as bytes), exemplars, lines, prefixes
        self._chunks: dict[tuple[readout.Shape, tuple[str, ...]], _Chunk] = {}

    def prefix(self, sample: Sample) -> str:
        key = (sample.name, tuple(sample.labels.items()))
        found = self._prefixes.get(key)
        if found is None:
            if len(self._prefixes) >= MAX_REMEMBERED:
                self._prefixes.clear()
            found = self._prefixes[key] = self._make_prefix(sample.name, sample.labels)
        return found

    def chunk(self, family: readout.Family, child: readout.Child, exemplars: bool) -> str:
        """One child's lines, formatted again only when its values (or exemplars) changed."""
        key = (family.shape, child.labelvalues)
        found = self._chunks.get(key)
        # compared as bytes: -0.0 == 0.0, yet they are written differently
        stamp = array("d", child.values).tobytes()
        if found is not None and found[0] == stamp and found[1] == child.exemplars:
            return found[2]
        if len(self._chunks) >= MAX_REMEMBERED:
            self._chunks.clear()
        prefixes = found[3] if found is not None else self._child_prefixes(family.shape, child)
        marks = child.exemplars or [None] * len(child.values)
        lines = zip(prefixes, child.values, marks, strict=True)
        text = "".join(
            f"{prefix}{self.value(number)}{_exemplar(exemplar) if exemplars and exemplar else ''}\n"
            for prefix, number, exemplar in lines
        )
        self._chunks[key] = (stamp, child.exemplars, text, prefixes)
        return text

    def _child_prefixes(self, shape: readout.Shape, child: readout.Child) -> list[str]:
        labels = dict(zip(shape.labelnames, child.labelvalues, strict=True))
        return [self._make_prefix(name, {**labels, **dict(extra)}) for name, extra in shape.layout]

    def value(self, value: float) -> str:
        if not value:  # 0.0 and -0.0 are one key but two strings
            return _ZERO[math.copysign(1.0, value) < 0]
        found = self._values.get(value)
        if found is None:
            if len(self._values) >= MAX_REMEMBERED:
                self._values.clear()
            found = self._values[value] = floatToGoString(value)
        return found


def _text_prefix(name: str, labels: dict[str, str]) -> str:
    label_string = _label_string(labels)
    name = openmetrics.escape_metric_name(name)
    return f"{name}{{{label_string}}} " if label_string else f"{name} "


def _openmetrics_prefix(name: str, labels: dict[str, str]) -> str:
    label_string = _label_string(labels)
    name = _LABEL_RUNE.sub("_", name[:1]) + _LABEL_TAIL_RUNE.sub("_", name[1:])
    return f"{name}{{{label_string}}} " if label_string else f"{name} "


class TextEncoder:
    """Prometheus text format 0.0.4, as ``prometheus_client.generate_latest`` writes it."""

    def __init__(self) -> None:
        self._memo = _Memo(_text_prefix)

    def __call__(self, registry: Collector) -> bytes:
        """The registry's samples, encoded."""
        output: list[str] = []
        for metric in _families(registry, exemplars=False):
            if isinstance(metric, readout.Family):
                self._direct(metric, output)
                continue
            name = metric.name + "_total" if metric.type == "counter" else metric.name
            if metric.type == "info":
                name = metric.name + "_info"
            kind = _TEXT_TYPES.get(metric.type, metric.type)
            output.append(_text_header(name, kind, metric.documentation))
            apart: dict[str, list[str]] = {}
            for sample in metric.samples:
                suffix = sample.name[len(metric.name) :]
                line = self._line(sample)
                if suffix in _TEXT_APART and sample.name == metric.name + suffix:
                    apart.setdefault(suffix, []).append(line)
                else:
                    output.append(line)
            for suffix, lines in sorted(apart.items()):
                output.append(_text_header(metric.name + suffix, "gauge", metric.documentation))
                output.extend(lines)
        return "".join(output).encode("utf-8")

    def _direct(self, family: readout.Family, output: list[str]) -> None:
        header = family.shape.header
        name = header.name + "_total" if header.type == "counter" else header.name
        output.append(_text_header(name, header.type, header.documentation))
        output.extend(self._memo.chunk(family, child, exemplars=False) for child in family.children)

    def _line(self, sample: Sample) -> str:
        stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"
        return f"{self._memo.prefix(sample)}{self._memo.value(sample.value)}{stamp}\n"


@functools.lru_cache(maxsize=1024)
def _text_header(name: str, kind: str, documentation: str) -> str:
    name = openmetrics.escape_metric_name(name)
    return f"# HELP {name} {_escaped(documentation, quote=False)}\n# TYPE {name} {kind}\n"


@functools.lru_cache(maxsize=1024)
def _openmetrics_header(name: str, kind: str, documentation: str, unit: str) -> str:
    name = openmetrics.escape_metric_name(name)
    header = f"# HELP {name} {_escaped(documentation)}\n# TYPE {name} {kind}\n"
    return header + (f"# UNIT {name} {unit}\n" if unit else "")


class OpenMetricsEncoder:
    """OpenMetrics 1.0.0 with exemplars, as ``prometheus_client.openmetrics`` writes it."""

    def __init__(self) -> None:
        self._memo = _Memo(_openmetrics_prefix)

    def __call__(self, registry: Collector) -> bytes:
        """The registry's samples, encoded."""
        output: list[str] = []
        for metric in _families(registry, exemplars=True):
            header = metric.shape.header if isinstance(metric, readout.Family) else metric
            output.append(
                _openmetrics_header(header.name, header.type, header.documentation, header.unit)
            )
            if isinstance(metric, readout.Family):
                self._direct(metric, output)
            else:
                output.extend(self._lines(metric.samples))
        output.append("# EOF\n")
        return "".join(output).encode("utf-8")

    def _direct(self, family: readout.Family, output: list[str]) -> None:
        output.extend(self._memo.chunk(family, child, exemplars=True) for child in family.children)

    def _lines(self, samples: Iterable[Sample]) -> Iterable[str]:
        for sample in samples:
            if sample.native_histogram:  # not in OpenMetrics 1.0.0
                continue
            value = "" if sample.value is None else self._memo.value(sample.value)
            stamp = "" if sample.timestamp is None else f" {sample.timestamp}"
            exemplar = "" if not sample.exemplar else _exemplar(sample.exemplar)
            yield f"{self._memo.prefix(sample)}{value}{stamp}{exemplar}\n"


def _exemplar(exemplar: Any) -> str:
    labels = ",".join(f'{k}="{_escaped(v)}"' for k, v in sorted(exemplar.labels.items()))
    stamp = "" if exemplar.timestamp is None else f" {exemplar.timestamp}"
    return f" # {{{labels}}} {floatToGoString(exemplar.value)}{stamp}"


def _families(registry: Collector, exemplars: bool) -> Iterator[readout.Family | Metric]:
    """The registry's metrics, read directly where :mod:`readout` can, else collected."""
    found = readout.collectors(registry)
    if found is None:
        yield from registry.collect()
        return
    for collector in found:
        family = readout.read(collector, exemplars)
        if family is None:
            yield from collector.collect()
        else:
            yield family


def fast_encoder(chosen: Encoder) -> Encoder | None:
    """A memoizing encoder producing what ``chosen`` (from ``choose_encoder``) would, if any."""
    if chosen is exposition.generate_latest:
        return TextEncoder()
    if not isinstance(chosen, functools.partial) or chosen.args:
        return None
    options = chosen.keywords
    if options.get("escaping", openmetrics.UNDERSCORES) != openmetrics.UNDERSCORES:
        return None
    if chosen.func is exposition.generate_latest and set(options) <= {"escaping"}:
        return TextEncoder()
    if chosen.func is openmetrics.generate_latest and options.get("version") == "1.0.0":
        return OpenMetricsEncoder()
    return None
