"""SLOs: for each objective, the error budget left and the burn rate over every window."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.models.dashboard import Dashboard

from hephaestus.observability import recording as rec
from hephaestus.observability.dashboards.queries import (
    availability_budget_left,
    budget_stat,
    sel,
    success_budget_left,
)
from hephaestus.observability.kpis import AVAILABILITY_SLO, SLO, SUCCESS_SLO, slo_windows
from hephaestus.observability.panels import (
    BREACH,
    OK,
    Panel,
    Query,
    dashboard,
    graph_panel,
)
from hephaestus.observability.promql import number

UID = "hephaestus-slo"


def _slo_row(slo: SLO, budget_left: str, sli: Callable[[str], str]) -> list[Panel]:
    factors = sorted({w.factor for w in slo.windows})
    return [
        budget_stat(slo, budget_left),
        graph_panel(
            f"{slo.title}: burn rate per window",
            "How many times faster than the objective allows the error budget burns, over "
            "each alert window. Dashed lines: the factors at which the alert tiers fire "
            f"({', '.join(number(f) + 'x' for f in factors)}).",
            "suffix:x",
            *(Query(sel(rec.burn_rate(slo, w)), f"{{{{instance}}}} {w}") for w in slo_windows(slo)),
            steps=[(None, OK), *((f, BREACH) for f in factors)],
            width=10,
        ),
        graph_panel(
            f"{slo.title}: SLI",
            f"The SLI over 1 hour and 1 day against the {number(slo.objective * 100)} % "
            "objective (dashed).",
            "percentunit",
            *(Query(sel(sli(w)), f"{{{{instance}}}} {w}") for w in ("1h", "1d")),
            steps=[(None, BREACH), (slo.objective, OK)],
            width=8,
            min_value=None,
        ),
    ]


def slos() -> Dashboard:
    """Burn rate per window and budget left, for each SLO."""
    return dashboard(
        UID,
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
