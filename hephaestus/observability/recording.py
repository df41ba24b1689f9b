"""Recording rules: the SLIs, burn rates and KPIs that alerts and dashboards read.

Names follow Prometheus's ``level:metric:operations`` convention; every rule keeps the
``job`` and ``instance`` labels, so each agent has its own SLOs and KPIs.
"""

from __future__ import annotations

from dataclasses import dataclass

from hephaestus.observability.kpis import (
    AVAILABILITY_SLO,
    SLO,
    SUCCESS_SLO,
    slo_windows,
)
from hephaestus.observability.promql import number, selector

BY_INSTANCE = "sum by (job, instance)"
SUCCEEDED = 'outcome="succeeded"'
FAILED_CALL = 'error_type!=""'


@dataclass(frozen=True)
class Recording:
    """One recording rule."""

    record: str
    expr: str

    def rule(self) -> dict[str, str]:
        """The rule as Prometheus reads it."""
        return {"record": self.record, "expr": self.expr}


# -- names (alerts and dashboards refer to these) ---------------------------------------------
def cycles_increase(window: str) -> str:
    """Cycles finished in ``window`` (any outcome)."""
    return f"instance:hephaestus_cycles:increase{window}"


def success_ratio(window: str) -> str:
    """Share of cycles that succeeded in ``window``."""
    return f"instance:hephaestus_cycles_succeeded:ratio_rate{window}"


def unsuccessful_ratio(window: str) -> str:
    """Share of cycles that did not succeed in ``window``: the success SLO's error ratio."""
    return f"instance:hephaestus_cycles_unsuccessful:ratio_rate{window}"


def availability_ratio(window: str) -> str:
    """Share of scrapes in ``window`` in which the agent answered."""
    return f"instance:up:avg_over_time{window}"


def burn_rate(slo: SLO, window: str) -> str:
    """How many times faster than allowed ``slo``'s budget burns over ``window``."""
    if slo is SUCCESS_SLO:
        return f"instance:hephaestus_cycles_unsuccessful:burnrate{window}"
    return f"instance:up:burnrate{window}"


AGENT_P95 = "instance_agent:hephaestus_agent_response_seconds:p95_rate5m"
RESPONSE_P95 = "instance:hephaestus_agent_response_seconds:p95_rate5m"
MTTR = "instance:hephaestus_recovery_seconds:mean1d"
LLM_ERROR_RATIO = "instance_model:gen_ai_client_errors:ratio_rate5m"
RETRIES_PER_CALL = "instance:stamina_retries_per_call:ratio_rate5m"
OBJECTIVES_PER_DAY = cycles_increase("1d")


# -- rules ------------------------------------------------------------------------------------
def _cycles_rate(window: str, *matchers: str) -> str:
    return f"{BY_INSTANCE} (rate({selector('hephaestus_cycles_total', *matchers)}[{window}]))"


def success_rules(slo: SLO = SUCCESS_SLO) -> list[Recording]:
    """The success SLI and its burn rate per window, and the cycle counts behind them."""
    rules = [
        Recording(
            cycles_increase(window),
            f"{BY_INSTANCE} (increase({selector('hephaestus_cycles_total')}[{window}]))",
        )
        for window in dict.fromkeys([*(w.long for w in slo.windows), "1d"])
    ]
    for window in slo_windows(slo):
        rules += [
            Recording(
                success_ratio(window),
                f"{_cycles_rate(window, SUCCEEDED)}\n/\n{_cycles_rate(window)}",
            ),
            Recording(unsuccessful_ratio(window), f"1 - {success_ratio(window)}"),
            Recording(
                burn_rate(slo, window), f"{unsuccessful_ratio(window)} / {number(slo.budget)}"
            ),
        ]
    return rules


def availability_rules(slo: SLO = AVAILABILITY_SLO) -> list[Recording]:
    """The availability SLI (share of successful scrapes) and its burn rate per window."""
    rules = []
    for window in slo_windows(slo):
        rules += [
            Recording(
                availability_ratio(window),
                f"avg by (job, instance) (avg_over_time({selector('up')}[{window}]))",
            ),
            Recording(
                burn_rate(slo, window),
                f"(1 - {availability_ratio(window)}) / {number(slo.budget)}",
            ),
        ]
    return rules


def _p95(by: str) -> str:
    bucket = selector("hephaestus_agent_response_seconds_bucket")
    return f"histogram_quantile(0.95, sum by ({by}) (rate({bucket}[5m])))"


def _llm_calls(*matchers: str) -> str:
    calls = selector("gen_ai_client_operation_duration_seconds_count", *matchers)
    return f"sum by (job, instance, gen_ai_provider_name, gen_ai_request_model) (rate({calls}[5m]))"


def kpi_rules() -> list[Recording]:
    """Agent response p95, MTTR, LLM error ratio and retries per call."""
    recovery = "hephaestus_recovery_seconds"
    return [
        Recording(RESPONSE_P95, _p95("job, instance, le")),
        Recording(AGENT_P95, _p95("job, instance, agent, le")),
        Recording(
            MTTR,
            f"{BY_INSTANCE} (increase({selector(recovery + '_sum')}[1d]))\n/\n"
            f"{BY_INSTANCE} (increase({selector(recovery + '_count')}[1d]))",
        ),
        # Zero, not absent, while no call failed: the error series appear with the first error.
        Recording(
            LLM_ERROR_RATIO,
            f"({_llm_calls(FAILED_CALL)}\n  or\n{_llm_calls()} * 0)\n/\n{_llm_calls()}",
        ),
        Recording(
            RETRIES_PER_CALL,
            f"{BY_INSTANCE} (rate({selector('stamina_retries_total')}[5m]))\n/\n"
            f"{BY_INSTANCE} (rate("
            f"{selector('gen_ai_client_operation_duration_seconds_count')}[5m]))",
        ),
    ]


def groups() -> list[dict[str, object]]:
    """The recording rule groups, in evaluation order."""
    return [
        {"name": "hephaestus.slo.success", "rules": [r.rule() for r in success_rules()]},
        {
            "name": "hephaestus.slo.availability",
            "rules": [r.rule() for r in availability_rules()],
        },
        {"name": "hephaestus.kpis", "rules": [r.rule() for r in kpi_rules()]},
    ]


def recorded_names() -> list[str]:
    """Every series the recording rules write."""
    return [r.record for r in (*success_rules(), *availability_rules(), *kpi_rules())]
