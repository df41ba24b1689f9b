"""PromQL shared by the dashboards: selectors on ``$instance``, rates, percentiles, budgets."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat

from hephaestus.observability import recording as rec
from hephaestus.observability.kpis import AVAILABILITY_SLO, SLO, SLO_PERIOD, SUCCESS_SLO
from hephaestus.observability.panels import BREACH, OK, Query, stat_panel
from hephaestus.observability.promql import number, selector

RATE = "$__rate_interval"
MODEL = 'gen_ai_request_model=~"$model"'


def sel(metric: str, *matchers: str) -> str:
    """A dashboard selector: the agent's job, the ``$instance`` variable, ``matchers``."""
    return selector(metric, *matchers, dashboard=True)


def per_minute(metric: str, by: str, *matchers: str) -> str:
    """Increments of a counter per minute, summed ``by``."""
    return f"sum by ({by}) (rate({sel(metric, *matchers)}[{RATE}])) * 60"


def quantile(q: float, metric: str, by: str, *matchers: str) -> str:
    """The ``q`` quantile of a histogram; ``by`` lists labels followed by ``, ``."""
    bucket = sel(f"{metric}_bucket", *matchers)
    return f"histogram_quantile({q}, sum by ({by}le) (rate({bucket}[{RATE}])))"


def uptime() -> str:
    """Share of scrapes that succeeded over the SLO period."""
    return f"avg by (instance) (avg_over_time({sel('up')}[{SLO_PERIOD}]))"


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
    return f"1 - (1 - {uptime()}) / {number(AVAILABILITY_SLO.budget)}"


def budget_stat(slo: SLO, expr: str) -> stat.Panel:
    """A stat of the budget an SLO has left; red once it is spent."""
    return stat_panel(
        f"{slo.title}: error budget left ({SLO_PERIOD})",
        f"Share of the {SLO_PERIOD} error budget of the {number(slo.objective * 100)} % "
        f"{slo.title.lower()} objective that is left; below zero the objective is missed.",
        "percentunit",
        Query(expr, "{{instance}}", instant=True),
        [(None, BREACH), (0, "orange"), (0.25, OK)],
        decimals=1,
        width=6,
    )
