"""Every PromQL expression in the generated files, read back the way Prometheus and Grafana do.

The linter and the tests read the files, not the generator's objects, so what is checked is
exactly what is shipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from hephaestus.observability.promql import Vocabulary, catalog_vocabulary, lint

_LABEL_VALUES = re.compile(r"^label_values\((?P<series>.+),\s*(?P<label>\w+)\)$", re.DOTALL)


@dataclass(frozen=True)
class Expression:
    """One expression and where it lives."""

    file: str
    where: str
    expr: str
    kind: str
    """``recording``, ``alert``, ``panel``, ``variable`` or ``datasource``."""


def _rules(file: str, text: str) -> Iterator[Expression]:
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule["alert"]
            kind = "recording" if "record" in rule else "alert"
            yield Expression(file, f"{group['name']}/{name}", rule["expr"], kind)


def panels(board: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel of a dashboard, rows' collapsed panels included (rows themselves not)."""
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def _dashboard(file: str, text: str) -> Iterator[Expression]:
    board = json.loads(text)
    for panel in panels(board):
        for target in panel.get("targets", []):
            where = f"{board['uid']}/{panel['title']}/{target['refId']}"
            yield Expression(file, where, target["expr"], "panel")
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            # label_values(series, label) lists what this query groups by
            match = _LABEL_VALUES.match(variable["query"])
            expr = (
                f"count by ({match.group('label')}) ({match.group('series')})"
                if match
                else variable["query"]
            )
            yield Expression(file, f"{board['uid']}/${variable['name']}", expr, "variable")


def _datasources(file: str, text: str) -> Iterator[Expression]:
    for source in yaml.safe_load(text)["datasources"]:
        links = source.get("jsonData", {}).get("tracesToMetrics", {})
        for query in links.get("queries", []):
            where = f"{source['name']}/tracesToMetrics/{query['name']}"
            yield Expression(file, where, query["query"], "datasource")


def find(files: Mapping[str, str]) -> list[Expression]:
    """The expressions of ``files`` (relative path -> content) that hold PromQL."""
    found: list[Expression] = []
    for path, text in files.items():
        if path.startswith("deploy/prometheus/rules/"):
            found += _rules(path, text)
        elif path.startswith("grafana/dashboards/"):
            found += _dashboard(path, text)
        elif path.startswith("grafana/provisioning/datasources/"):
            found += _datasources(path, text)
    return found


def vocabulary(files: Mapping[str, str]) -> Vocabulary:
    """The catalog's series plus those the recording rules in ``files`` write."""
    recorded = [e.where.rsplit("/", 1)[1] for e in find(files) if e.kind == "recording"]
    return catalog_vocabulary().with_recorded(recorded)


def lint_files(files: Mapping[str, str]) -> list[str]:
    """Every expression in ``files`` that names a series or label the catalog lacks."""
    known = vocabulary(files)
    return [
        f"{e.file}: {e.where}: {problem}" for e in find(files) for problem in lint(e.expr, known)
    ]
