"""The four Grafana dashboards: Overview, Cycle pipeline, LLM and SLOs.

Panel queries read the catalog's metrics and the recording rules; graphs use
``$__rate_interval``, KPI stats use the window their target is defined over.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.models.dashboard import Dashboard

from hephaestus.observability import recording as rec
from hephaestus.observability.kpis import (
    AVAILABILITY_SLO,
    SLO,
    SLO_PERIOD,
    SUCCESS_SLO,
    TARGETS,
    slo_windows,
)
from hephaestus.observability.panels import (
    BREACH,
    OK_BELOW,
    Query,
    bar_panel,
    dashboard,
    graph_panel,
    heatmap_panel,
    model_variable,
    nan_as,
    stat_panel,
    table_panel,
    timeline_panel,
)
from hephaestus.observability.promql import number, selector

RATE = "$__rate_interval"
UIDS = {
    "overview": "hephaestus-overview",
    "pipeline": "hephaestus-pipeline",
    "llm": "hephaestus-llm",
    "slo": "hephaestus-slo",
}
MODEL = 'gen_ai_request_model=~"$model"'
OPEN = 'state="open"'
HALF_OPEN = 'state="half_open"'


def sel(metric: str, *matchers: str) -> str:
    """A dashboard selector: the agent's job, the ``$instance`` variable, ``matchers``."""
    return selector(metric, *matchers, dashboard=True)


def _per_minute(metric: str, by: str, *matchers: str) -> str:
    return f"sum by ({by}) (rate({sel(metric, *matchers)}[{RATE}])) * 60"


def _quantile(q: float, metric: str, by: str, *matchers: str) -> str:
    bucket = sel(f"{metric}_bucket", *matchers)
    return f"histogram_quantile({q}, sum by ({by}le) (rate({bucket}[{RATE}])))"


# -- Overview -------------------------------------------------------------------------------------
def success_budget_left() -> str:
    """Share of the success SLO's error budget left over the SLO period."""
    cycles = "hephaestus_cycles_total"
    ratio = (
        f"sum by (instance) (increase({sel(cycles, rec.SUCCEEDED)}[{SLO_PERIOD}]))\n"
        f"/ sum by (instance) (increase({sel(cycles)}[{SLO_PERIOD}]))"
    )
    return f"1 - (1 - (\n{ratio}\n)) / {number(SUCCESS_SLO.budget)}"


def availability_budget_left() -> str:
    """Share of the availability SLO's error budget left over the SLO period."""
    uptime = f"avg by (instance) (avg_over_time({sel('up')}[{SLO_PERIOD}]))"
    return f"1 - (1 - {uptime}) / {number(AVAILABILITY_SLO.budget)}"


def _budget_stat(slo: SLO, expr: str) -> object:
    return stat_panel(
        f"{slo.title}: error budget left ({SLO_PERIOD})",
        f"Share of the {SLO_PERIOD} error budget of the {number(slo.objective * 100)} % "
        f"{slo.title.lower()} objective that is left; below zero the objective is missed.",
        "percentunit",
        Query(expr, "{{instance}}", instant=True),
        [(None, BREACH), (0, "orange"), (0.25, OK_BELOW)],
        decimals=1,
        width=6,
    )


def _kpi_stats() -> list[object]:
    internal = sel("hephaestus_cycles_total", 'reason="internal_error"')
    return [
        stat_panel(
            "Success rate (24h)",
            "Share of the cycles of the last 24 hours that committed a validated change. "
            f"Target: at least {number(TARGETS.success_ratio * 100)} %.",
            "percentunit",
            Query(sel(rec.success_ratio("1d")), "{{instance}}", instant=True),
            [(None, BREACH), (TARGETS.success_ratio, OK_BELOW)],
            decimals=1,
            mappings=[nan_as("no cycles")],
        ),
        stat_panel(
            "Agent response p95",
            "95th percentile of the LLM-backed agents' response time over 5 minutes. "
            f"Target: under {number(TARGETS.agent_response_p95_seconds)} s.",
            "s",
            Query(sel(rec.RESPONSE_P95), "{{instance}}", instant=True),
            [(None, OK_BELOW), (TARGETS.agent_response_p95_seconds, BREACH)],
            mappings=[nan_as("no calls")],
        ),
        stat_panel(
            "Objectives per day",
            "Cycles finished in the last 24 hours, whatever their outcome. "
            f"Target: at least {number(TARGETS.objectives_per_day)}.",
            "short",
            Query(sel(rec.OBJECTIVES_PER_DAY), "{{instance}}", instant=True),
            [(None, BREACH), (TARGETS.objectives_per_day, OK_BELOW)],
            decimals=0,
        ),
        stat_panel(
            f"Uptime ({SLO_PERIOD})",
            f"Share of scrapes in the last {SLO_PERIOD} in which the agent answered. "
            f"Target: at least {number(TARGETS.availability * 100)} %.",
            "percentunit",
            Query(
                f"avg by (instance) (avg_over_time({sel('up')}[{SLO_PERIOD}]))",
                "{{instance}}",
                instant=True,
            ),
            [(None, BREACH), (TARGETS.availability, OK_BELOW)],
            decimals=3,
        ),
        stat_panel(
            "MTTR (24h)",
            "Mean time from the first failed cycle of a streak to the success that ends it, "
            f"over 24 hours. Target: under {number(TARGETS.mttr_seconds)} s.",
            "s",
            Query(sel(rec.MTTR), "{{instance}}", instant=True),
            [(None, OK_BELOW), (TARGETS.mttr_seconds, BREACH)],
            mappings=[nan_as("no recovery")],
        ),
        stat_panel(
            "Internal errors (24h)",
            "Cycles that ended with internal_error (a bug in the agent) in the last 24 "
            "hours. Target: zero.",
            "short",
            Query(f"sum by (instance) (increase({internal}[1d]))", "{{instance}}", instant=True),
            [(None, OK_BELOW), (1, BREACH)],
            decimals=0,
        ),
    ]


def overview() -> Dashboard:
    """Each KPI against its target, error budgets, firing alerts and cycle outcomes."""
    firing = (
        'ALERTS{alertstate="firing", instance=~"$instance"}\n'
        'or ALERTS{alertstate="firing", alertname="Watchdog"}'
    )
    cycles = "hephaestus_cycles_total"
    return dashboard(
        UIDS["overview"],
        "Hephaestus / Overview",
        "Is the agent healthy and improving code? Each KPI against its target.",
        [
            ("KPIs against their targets", _kpi_stats()),
            (
                "Error budgets and alerts",
                [
                    _budget_stat(SUCCESS_SLO, success_budget_left()),
                    _budget_stat(AVAILABILITY_SLO, availability_budget_left()),
                    table_panel(
                        "Firing alerts",
                        "Alerts firing now. Watchdog always fires: if it is missing, "
                        "Prometheus is not evaluating the rules.",
                        "short",
                        Query(f"sum by (alertname, severity, instance) ({firing})", instant=True),
                    ),
                ],
            ),
            (
                "Cycles",
                [
                    graph_panel(
                        "Cycles by outcome",
                        "Cycles finished per minute, by outcome. Only succeeded cycles "
                        "count towards the success rate.",
                        "cpm",
                        Query(_per_minute(cycles, "outcome"), "{{outcome}}"),
                        stacked=True,
                    ),
                    bar_panel(
                        "Cycles by outcome and reason",
                        "Cycles finished in the selected time range, by outcome and reason code.",
                        "short",
                        Query(
                            f"sum by (outcome, reason) (increase({sel(cycles)}[$__range])) > 0",
                            "{{outcome}} / {{reason}}",
                            instant=True,
                        ),
                    ),
                ],
            ),
        ],
    )


# -- Cycle pipeline -------------------------------------------------------------------------------
def pipeline() -> Dashboard:
    """Where the time of a cycle goes and why cycles fail."""
    stage = "hephaestus_stage_duration_seconds"
    cycle = "hephaestus_cycle_duration_seconds"
    return dashboard(
        UIDS["pipeline"],
        "Hephaestus / Cycle pipeline",
        "Where a cycle spends its time and why cycles fail; exemplars lead to the trace.",
        [
            (
                "Stages",
                [
                    graph_panel(
                        f"Stage duration p{q}",
                        f"{q}th percentile of each stage's duration. Click an exemplar to "
                        "open the trace of that cycle in Jaeger.",
                        "s",
                        Query(_quantile(q / 100, stage, "stage, "), "{{stage}}", exemplar=True),
                    )
                    for q in (50, 95)
                ],
            ),
            (
                "Cycles",
                [
                    heatmap_panel(
                        "Cycle duration",
                        "Distribution of whole-cycle durations; the dots are exemplars, "
                        "each one a cycle's trace.",
                        "s",
                        Query(
                            f"sum by (le) (rate({sel(cycle + '_bucket')}[{RATE}]))",
                            "{{le}}",
                            exemplar=True,
                            heatmap=True,
                        ),
                    ),
                    graph_panel(
                        "Cycle duration p50 / p95 by outcome",
                        "Median and 95th percentile of cycle duration, by outcome.",
                        "s",
                        Query(_quantile(0.5, cycle, "outcome, "), "p50 {{outcome}}", exemplar=True),
                        Query(
                            _quantile(0.95, cycle, "outcome, "),
                            "p95 {{outcome}}",
                            exemplar=True,
                        ),
                    ),
                ],
            ),
            (
                "Failures and validation",
                [
                    graph_panel(
                        "Failures by reason",
                        "Failed cycles per minute by reason code (tests_failed, llm_error, "
                        "patch_conflict, …). internal_error is a bug in the agent.",
                        "cpm",
                        Query(
                            _per_minute("hephaestus_cycles_total", "reason", 'outcome="failed"'),
                            "{{reason}}",
                        ),
                        stacked=True,
                        width=8,
                    ),
                    graph_panel(
                        "Validation test runs by result",
                        "pytest runs of the target's suite per minute, by result.",
                        "cpm",
                        Query(
                            _per_minute("hephaestus_validation_tests_total", "result"),
                            "{{result}}",
                        ),
                        stacked=True,
                        width=8,
                    ),
                    graph_panel(
                        "Consecutive failed cycles",
                        "Failed cycles since the last success; it falls back to zero when "
                        "the agent recovers (the recovery time feeds MTTR).",
                        "short",
                        Query(
                            f"max by (instance) ({sel('hephaestus_consecutive_failures')})",
                            "{{instance}}",
                        ),
                        width=8,
                    ),
                ],
            ),
        ],
    )


# -- LLM ------------------------------------------------------------------------------------------
def _llm_calls(*matchers: str, by: str = "gen_ai_request_model") -> str:
    calls = sel("gen_ai_client_operation_duration_seconds_count", MODEL, *matchers)
    return f"sum by ({by}) (rate({calls}[{RATE}]))"


def llm() -> Dashboard:
    """Model calls: volume, errors, latency, tokens, retries and circuit breakers."""
    duration = "gen_ai_client_operation_duration_seconds"
    breaker = "hephaestus_circuit_breaker_state"
    timeline = (
        f"max by (breaker) (\n  2 * {sel(breaker, OPEN)}\n"
        f"  + ignoring (state) {sel(breaker, HALF_OPEN)}\n)"
    )
    errors = (
        f"{_llm_calls(rec.FAILED_CALL, by='gen_ai_request_model, error_type')}\n"
        f"or {_llm_calls()} * 0"
    )
    return dashboard(
        UIDS["llm"],
        "Hephaestus / LLM",
        "Model calls of the agents: volume, errors, latency, tokens, retries, breakers.",
        [
            (
                "Requests",
                [
                    graph_panel(
                        "Requests by model",
                        "Model calls per second (a call includes its retries).",
                        "reqps",
                        Query(_llm_calls(), "{{gen_ai_request_model}}"),
                        width=8,
                    ),
                    graph_panel(
                        "Errors by model and type",
                        "Model calls per second that failed after retries, by error type "
                        "(timeout, http_500, circuit_open, …); zero while none fail.",
                        "reqps",
                        Query(errors, "{{gen_ai_request_model}} {{error_type}}"),
                        width=8,
                    ),
                    graph_panel(
                        "Error ratio by model",
                        "Share of model calls that failed over 5 minutes; "
                        "HephaestusLLMErrorsHigh fires above 10 %.",
                        "percentunit",
                        Query(sel(rec.LLM_ERROR_RATIO, MODEL), "{{gen_ai_request_model}}"),
                        steps=[(None, OK_BELOW), (0.1, BREACH)],
                        width=8,
                    ),
                ],
            ),
            (
                "Latency and tokens",
                [
                    graph_panel(
                        "Latency p50 / p95 / p99",
                        "Model call duration percentiles, by model; click an exemplar to "
                        "open the call's span in Jaeger.",
                        "s",
                        *(
                            Query(
                                _quantile(q / 100, duration, "gen_ai_request_model, ", MODEL),
                                f"p{q} {{{{gen_ai_request_model}}}}",
                                exemplar=True,
                            )
                            for q in (50, 95, 99)
                        ),
                        steps=[(None, OK_BELOW), (TARGETS.agent_response_p95_seconds, BREACH)],
                    ),
                    graph_panel(
                        "Tokens per second",
                        "Input and output tokens per second, by model.",
                        "suffix: tokens/s",
                        Query(
                            "sum by (gen_ai_request_model, gen_ai_token_type) (rate("
                            f"{sel('gen_ai_client_token_usage_sum', MODEL)}[{RATE}]))",
                            "{{gen_ai_request_model}} {{gen_ai_token_type}}",
                        ),
                    ),
                ],
            ),
            (
                "Resilience",
                [
                    graph_panel(
                        "Retries by error type",
                        "Retries per second scheduled by stamina, by the error that caused them.",
                        "ops",
                        Query(
                            f"sum by (error_type) (rate({sel('stamina_retries_total')}[{RATE}]))",
                            "{{error_type}}",
                        ),
                    ),
                    timeline_panel(
                        "Circuit breaker state",
                        "State of each model's circuit breaker: while open, calls go to "
                        "the role's fallback models.",
                        Query(timeline, "{{breaker}}"),
                        [(0, "closed", "green"), (1, "half-open", "orange"), (2, "open", "red")],
                    ),
                ],
            ),
        ],
        variables=[model_variable()],
    )


# -- SLOs -----------------------------------------------------------------------------------------
def _slo_row(slo: SLO, budget_left: str, sli: Callable[[str], str]) -> list[object]:
    windows = slo_windows(slo)
    factors = sorted({w.factor for w in slo.windows})
    return [
        _budget_stat(slo, budget_left),
        graph_panel(
            f"{slo.title}: burn rate per window",
            "How many times faster than the objective allows the error budget burns, over "
            "each alert window. Dashed lines: the factors at which the alert tiers fire "
            f"({', '.join(number(f) + 'x' for f in factors)}).",
            "x",
            *(Query(sel(rec.burn_rate(slo, w)), f"{{{{instance}}}} {w}") for w in windows),
            steps=[(None, OK_BELOW), *((f, BREACH) for f in factors)],
            width=10,
        ),
        graph_panel(
            f"{slo.title}: SLI",
            f"The SLI over 1 hour and 1 day against the {number(slo.objective * 100)} % "
            "objective (dashed).",
            "percentunit",
            *(Query(sel(sli(w)), f"{{{{instance}}}} {w}") for w in ("1h", "1d")),
            steps=[(None, BREACH), (slo.objective, OK_BELOW)],
            width=8,
            min_value=None,
        ),
    ]


def slos() -> Dashboard:
    """Burn rate per window and budget left, for each SLO."""
    return dashboard(
        UIDS["slo"],
        "Hephaestus / SLOs",
        "The success-rate and availability objectives: error budget left and burn rates.",
        [
            (
                f"{SUCCESS_SLO.title} ≥ {number(SUCCESS_SLO.objective * 100)} %",
                _slo_row(SUCCESS_SLO, success_budget_left(), rec.success_ratio),
            ),
            (
                f"{AVAILABILITY_SLO.title} ≥ {number(AVAILABILITY_SLO.objective * 100)} %",
                _slo_row(AVAILABILITY_SLO, availability_budget_left(), rec.availability_ratio),
            ),
        ],
    )


def all_dashboards() -> dict[str, Dashboard]:
    """File stem -> dashboard."""
    return {
        "hephaestus-overview": overview(),
        "hephaestus-pipeline": pipeline(),
        "hephaestus-llm": llm(),
        "hephaestus-slo": slos(),
    }
