"""Cycle pipeline: where a cycle spends its time and why cycles fail."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from hephaestus.observability.dashboards.queries import RATE, per_minute, quantile, sel
from hephaestus.observability.panels import (
    Panel,
    Query,
    dashboard,
    graph_panel,
    heatmap_panel,
)

UID = "hephaestus-pipeline"
STAGE = "hephaestus_stage_duration_seconds"
CYCLE = "hephaestus_cycle_duration_seconds"


def _stages() -> list[Panel]:
    return [
        graph_panel(
            f"Stage duration p{q}",
            f"{q}th percentile of each stage's duration. Click an exemplar to open the trace "
            "of that cycle in Jaeger.",
            "s",
            Query(quantile(q / 100, STAGE, "stage, "), "{{stage}}", exemplar=True),
        )
        for q in (50, 95)
    ]


def _cycles() -> list[Panel]:
    return [
        heatmap_panel(
            "Cycle duration",
            "Distribution of whole-cycle durations; the dots are exemplars, each one a "
            "cycle's trace.",
            "s",
            Query(
                f"sum by (le) (rate({sel(CYCLE + '_bucket')}[{RATE}]))",
                "{{le}}",
                exemplar=True,
                heatmap=True,
            ),
        ),
        graph_panel(
            "Cycle duration p50 / p95 by outcome",
            "Median and 95th percentile of cycle duration, by outcome.",
            "s",
            *(
                Query(quantile(q / 100, CYCLE, "outcome, "), f"p{q} {{{{outcome}}}}", exemplar=True)
                for q in (50, 95)
            ),
        ),
    ]


def _failures() -> list[Panel]:
    return [
        graph_panel(
            "Failures by reason",
            "Failed cycles per minute by reason code (tests_failed, llm_error, "
            "patch_conflict, …). internal_error is a bug in the agent.",
            "cpm",
            Query(
                per_minute("hephaestus_cycles_total", "reason", 'outcome="failed"'), "{{reason}}"
            ),
            stacked=True,
            width=8,
        ),
        graph_panel(
            "Validation test runs by result",
            "pytest runs of the target's suite per minute, by result.",
            "cpm",
            Query(per_minute("hephaestus_validation_tests_total", "result"), "{{result}}"),
            stacked=True,
            width=8,
        ),
        graph_panel(
            "Consecutive failed cycles",
            "Failed cycles since the last success; it falls back to zero when the agent "
            "recovers (the recovery time feeds MTTR).",
            "short",
            Query(f"max by (instance) ({sel('hephaestus_consecutive_failures')})", "{{instance}}"),
            width=8,
        ),
    ]


def pipeline() -> Dashboard:
    """Where the time of a cycle goes and why cycles fail."""
    return dashboard(
        UID,
        "Hephaestus / Cycle pipeline",
        "Where a cycle spends its time and why cycles fail; exemplars lead to the trace.",
        [("Stages", _stages()), ("Cycles", _cycles()), ("Failures and validation", _failures())],
    )
