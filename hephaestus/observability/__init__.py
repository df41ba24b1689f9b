"""Generators for what watches the agent: Prometheus rules, Grafana dashboards, data sources.

Everything is derived from the metrics catalog (``hephaestus.telemetry.catalog``) and one
table of KPI targets (:mod:`hephaestus.observability.kpis`), so a rule or a panel can never
name a series the agent does not export. ``make generate`` (``python -m
hephaestus.observability``) writes the files; they are committed, and a test fails when they
differ from what the generator produces. Nothing in the agent imports this package.
"""

from __future__ import annotations

from hephaestus.observability.expressions import Expression, find, lint_files
from hephaestus.observability.files import GenerationError, checked, render, stale, write

__all__ = [
    "Expression",
    "GenerationError",
    "checked",
    "find",
    "lint_files",
    "render",
    "stale",
    "write",
]
