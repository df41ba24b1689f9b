"""PromQL for the generators: selectors scoped to the agent's job, and a linter.

The linter parses every expression with ``promql-parser`` (Prometheus's grammar, compiled)
and reports each metric or label that the catalog does not declare, so a rule or panel can
never quietly ask for a series the agent does not export.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import promql_parser

from hephaestus.observability.kpis import JOB
from hephaestus.telemetry.catalog import CATALOG

JOB_MATCHER = f'job="{JOB}"'
INSTANCE_MATCHER = 'instance=~"$instance"'
TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus attaches to every scraped series."""
ALERT_LABELS = frozenset({"alertname", "alertstate", "severity"})
BUILTIN_SERIES = {"up": frozenset(), "ALERTS": ALERT_LABELS}
"""Series Prometheus itself writes, which expressions may use besides the catalog."""

# Values a linted expression's Grafana variables stand for. They only need to parse.
LINT_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "instance": ".*",
    "model": ".*",
    "__tags": JOB_MATCHER,
}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def selector(metric: str, *matchers: str, dashboard: bool = False) -> str:
    """``metric{job="hephaestus", matchers...}``; dashboards also filter on ``$instance``."""
    scope = [JOB_MATCHER, INSTANCE_MATCHER] if dashboard else [JOB_MATCHER]
    return f"{metric}{{{', '.join([*scope, *matchers])}}}"


def number(value: float) -> str:
    """A float as PromQL writes it: no trailing ``.0``, no float noise."""
    return f"{value:.10g}"


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables (``$name`` and ``${name}``) by their values.

    An unknown variable is left in place, so the expression fails to parse and says so.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return _VARIABLE.sub(replace, expr)


@dataclass(frozen=True)
class Vocabulary:
    """The series an expression may select and the labels each one carries."""

    series: Mapping[str, frozenset[str]]
    """Series name -> its labels (besides ``job`` and ``instance``)."""
    recorded: frozenset[str] = frozenset()
    """Names of recording rules, which may carry any known label."""

    @property
    def labels(self) -> frozenset[str]:
        """Every label any series carries."""
        return frozenset().union(TARGET_LABELS, *self.series.values())

    def with_recorded(self, names: Iterable[str]) -> Vocabulary:
        """The same vocabulary plus the series written by recording rules ``names``."""
        return Vocabulary(self.series, self.recorded | frozenset(names))


def catalog_vocabulary() -> Vocabulary:
    """The series of the metrics catalog as Prometheus stores them, plus its own."""
    series: dict[str, frozenset[str]] = dict(BUILTIN_SERIES)
    for spec in CATALOG:
        labels = frozenset(spec.labels)
        if spec.kind == "histogram":
            series[f"{spec.name}_bucket"] = labels | {"le"}
            series[f"{spec.name}_sum"] = labels
            series[f"{spec.name}_count"] = labels
        else:
            series[spec.name] = labels
    return Vocabulary(series)


@dataclass
class _Names:
    """What one expression refers to."""

    selectors: list[tuple[str | None, list[str]]] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)


def _collect(names: _Names) -> Callable[[promql_parser.Expr], bool]:
    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = [m.name for m in node.matchers.matchers]
            names.selectors.append((node.name, matchers))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            names.grouping.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            modifier = node.modifier
            if modifier.matching is not None:
                names.grouping.update(modifier.matching.labels)
            names.grouping.update(modifier.group_labels or ())
        elif isinstance(node, promql_parser.Call) and node.func.name == "label_replace":
            names.grouping.add(node.args[3].val)  # the source label must exist
        return True

    return visit


def referenced_names(expr: str) -> tuple[list[tuple[str | None, list[str]]], set[str]]:
    """The selectors (series name, matcher labels) and grouping labels of ``expr``.

    Raises ``ValueError`` when ``expr`` is not valid PromQL.
    """
    names = _Names()
    promql_parser.walk(promql_parser.parse(expr), _collect(names))
    return names.selectors, names.grouping


def lint(expr: str, vocabulary: Vocabulary) -> list[str]:
    """Problems of ``expr`` (Grafana variables substituted): unknown series or labels."""
    try:
        selectors, grouping = referenced_names(substitute(expr, LINT_VARIABLES))
    except ValueError as exc:
        return [f"not valid PromQL: {exc}"]
    problems = []
    known_labels = vocabulary.labels
    for name, labels in selectors:
        if name is None:
            problems.append("a selector without a metric name")
            continue
        if name in vocabulary.series:
            allowed = vocabulary.series[name] | TARGET_LABELS
        elif name in vocabulary.recorded:
            allowed = known_labels
        else:
            problems.append(f"{name} is neither a catalog metric nor a recording rule")
            continue
        problems += [f"{name} has no label {label}" for label in labels if label not in allowed]
    problems += [f"no series has the label {label}" for label in sorted(grouping - known_labels)]
    return problems
