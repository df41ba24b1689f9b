"""Overview: is the agent healthy and improving code? Each KPI against its target."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from hephaestus.observability import recording as rec
from hephaestus.observability.dashboards.queries import (
    availability_budget_left,
    budget_stat,
    per_minute,
    sel,
    success_budget_left,
    uptime,
)
from hephaestus.observability.kpis import AVAILABILITY_SLO, SLO_PERIOD, SUCCESS_SLO, TARGETS
from hephaestus.observability.panels import (
    BREACH,
    OK,
    Panel,
    Query,
    bar_panel,
    dashboard,
    graph_panel,
    nan_as,
    stat_panel,
    table_panel,
)
from hephaestus.observability.promql import number

UID = "hephaestus-overview"
CYCLES = "hephaestus_cycles_total"
FIRING = (
    'ALERTS{alertstate="firing", instance=~"$instance"}\n'
    'or ALERTS{alertstate="firing", alertname="Watchdog"}'
)


def _per_instance(expr: str) -> Query:
    return Query(expr, "{{instance}}", instant=True)


def _work_stats() -> list[Panel]:
    """The KPIs of the work itself: success rate, response time, throughput."""
    return [
        stat_panel(
            "Success rate (24h)",
            "Share of the cycles of the last 24 hours that committed a validated change. "
            f"Target: at least {number(TARGETS.success_ratio * 100)} %.",
            "percentunit",
            _per_instance(sel(rec.success_ratio("1d"))),
            [(None, BREACH), (TARGETS.success_ratio, OK)],
            decimals=1,
            mappings=[nan_as("no cycles")],
        ),
        stat_panel(
            "Agent response p95",
            "95th percentile of the LLM-backed agents' response time over 5 minutes. "
            f"Target: under {number(TARGETS.agent_response_p95_seconds)} s.",
            "s",
            _per_instance(sel(rec.RESPONSE_P95)),
            [(None, OK), (TARGETS.agent_response_p95_seconds, BREACH)],
            mappings=[nan_as("no calls")],
        ),
        stat_panel(
            "Objectives per day",
            "Cycles finished in the last 24 hours, whatever their outcome. "
            f"Target: at least {number(TARGETS.objectives_per_day)}.",
            "short",
            _per_instance(sel(rec.OBJECTIVES_PER_DAY)),
            [(None, BREACH), (TARGETS.objectives_per_day, OK)],
            decimals=0,
        ),
    ]


def _health_stats() -> list[Panel]:
    """The KPIs of the service: uptime, recovery time, internal errors."""
    internal = sel(CYCLES, 'reason="internal_error"')
    return [
        stat_panel(
            f"Uptime ({SLO_PERIOD})",
            f"Share of scrapes in the last {SLO_PERIOD} in which the agent answered. "
            f"Target: at least {number(TARGETS.availability * 100)} %.",
            "percentunit",
            _per_instance(uptime()),
            [(None, BREACH), (TARGETS.availability, OK)],
            decimals=3,
        ),
        stat_panel(
            "MTTR (24h)",
            "Mean time from the first failed cycle of a streak to the success that ends it, "
            f"over 24 hours. Target: under {number(TARGETS.mttr_seconds)} s.",
            "s",
            _per_instance(sel(rec.MTTR)),
            [(None, OK), (TARGETS.mttr_seconds, BREACH)],
            mappings=[nan_as("no recovery")],
        ),
        stat_panel(
            "Internal errors (24h)",
            "Cycles that ended with internal_error (a bug in the agent) in the last 24 "
            "hours. Target: zero.",
            "short",
            _per_instance(f"sum by (instance) (increase({internal}[1d]))"),
            [(None, OK), (1, BREACH)],
            decimals=0,
        ),
    ]


def _budgets_and_alerts() -> list[Panel]:
    return [
        budget_stat(SUCCESS_SLO, success_budget_left()),
        budget_stat(AVAILABILITY_SLO, availability_budget_left()),
        table_panel(
            "Firing alerts",
            "Alerts firing now. Watchdog always fires: if it is missing, Prometheus is not "
            "evaluating the rules.",
            "short",
            Query(f"sum by (alertname, severity, instance) ({FIRING})", instant=True),
        ),
    ]


def _cycles() -> list[Panel]:
    return [
        graph_panel(
            "Cycles by outcome",
            "Cycles finished per minute, by outcome. Only succeeded cycles count towards the "
            "success rate.",
            "cpm",
            Query(per_minute(CYCLES, "outcome"), "{{outcome}}"),
            stacked=True,
        ),
        bar_panel(
            "Cycles by outcome and reason",
            "Cycles finished in the selected time range, by outcome and reason code.",
            "short",
            Query(
                f"sum by (outcome, reason) (increase({sel(CYCLES)}[$__range])) > 0",
                "{{outcome}} / {{reason}}",
                instant=True,
            ),
        ),
    ]


def overview() -> Dashboard:
    """Each KPI against its target, error budgets, firing alerts and cycle outcomes."""
    return dashboard(
        UID,
        "Hephaestus / Overview",
        "Is the agent healthy and improving code? Each KPI against its target.",
        [
            ("KPIs against their targets", [*_work_stats(), *_health_stats()]),
            ("Error budgets and alerts", _budgets_and_alerts()),
            ("Cycles", _cycles()),
        ],
    )
