"""The KPIs, their targets, and the score: one definition for the page, `status` and `report`.

Each KPI with data scores between 0 and 1 against its target:

- higher is better (success rate, objectives per day, uptime): ``min(1, value / target)``;
- lower is better (agent response p95, MTTR): 1 at or under the target, else ``target / value``;
- zero is the target (internal errors): 1 when there are none, else 0.

The overall score is ``100 * sum(weight * score) / sum(weight)`` over the KPIs that have data, so
a KPI nobody measured neither helps nor hurts; with fewer than :data:`MIN_CYCLES` cycles
there is no score at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hephaestus.performance.measurements import Measurements

MIN_CYCLES = 5
AGENT_BUDGET_S = 5.0
Better = Literal["higher", "lower", "zero"]


@dataclass(frozen=True)
class KPI:
    """One key performance indicator and its target."""

    key: str
    title: str
    target: float
    better: Better
    unit: str
    weight: float
    value_of: Callable[[Measurements], float | None]
    basis: str

    def state(self, value: float | None) -> str:
        """``ok``, ``breach`` or ``no_data``."""
        if value is None:
            return "no_data"
        if self.better == "higher":
            return "ok" if value >= self.target else "breach"
        if self.better == "lower":
            return "ok" if value <= self.target else "breach"
        return "ok" if value == self.target else "breach"

    def score(self, value: float | None) -> float | None:
        """The score in [0, 1] (see the module docstring), or ``None`` without data."""
        if value is None:
            return None
        if self.better == "higher":
            return min(1.0, value / self.target)
        if self.better == "lower":
            return 1.0 if value <= self.target else self.target / value
        return 1.0 if value == self.target else 0.0


def _mttr(m: Measurements) -> float | None:
    return m.mttr_s if m.recoveries else None


def _internal(m: Measurements) -> float | None:
    return float(m.internal_errors) if m.cycles else None


KPIS: tuple[KPI, ...] = (
    KPI("success_rate", "Success rate", 0.90, "higher", "ratio", 0.30,
        lambda m: m.success_rate, "succeeded / all cycles"),
    KPI("agent_response_p95", "Agent response p95", AGENT_BUDGET_S, "lower", "s", 0.20,
        lambda m: m.agent_p95_s, "p95 of brain, architect, code_reviewer and maestro"),
    KPI("objectives_per_day", "Objectives per day", 100, "higher", "per_day", 0.15,
        lambda m: m.per_day, "cycles at the observed pace (needs 10 minutes)"),
    KPI("uptime", "Uptime", 0.999, "higher", "ratio", 0.10,
        lambda m: m.uptime_ratio, "mean of the scrape job's up (Prometheus only)"),
    KPI("mttr", "MTTR", 30.0, "lower", "s", 0.15,
        _mttr, "first failure of a streak to the success that ends it"),
    KPI("internal_errors", "Internal errors", 0, "zero", "count", 0.10,
        _internal, "cycles failed with internal_error"),
)  # fmt: skip


def evaluate(measurements: Measurements) -> list[dict[str, Any]]:
    """Every KPI's value, target, state and score."""
    rows = []
    for kpi in KPIS:
        value = kpi.value_of(measurements)
        score = kpi.score(value)
        rows.append(
            {
                "key": kpi.key,
                "title": kpi.title,
                "value": value,
                "target": kpi.target,
                "better": kpi.better,
                "unit": kpi.unit,
                "state": kpi.state(value),
                "score": None if score is None else round(score, 4),
                "weight": kpi.weight,
                "basis": kpi.basis,
            }
        )
    return rows


def overall_score(kpis: list[dict[str, Any]]) -> float | None:
    """The weighted score in 0-100 over the KPIs that have data."""
    scored = [k for k in kpis if k["score"] is not None]
    weight = sum(k["weight"] for k in scored)
    if not weight:
        return None
    return round(100 * sum(k["weight"] * k["score"] for k in scored) / weight, 1)


def format_value(kpi: dict[str, Any], value: float | None = None) -> str:
    """A KPI value (or its target) as a person reads it: ``92.3 %``, ``4.1 s``, ``130/day``."""
    value = kpi["value"] if value is None else value
    if value is None:
        return "no data"
    unit = kpi["unit"]
    if unit == "ratio":
        return f"{value * 100:.{2 if kpi['key'] == 'uptime' else 1}f} %"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "per_day":
        return f"{value:.0f}/day"
    return f"{value:.0f}"


def format_target(kpi: dict[str, Any]) -> str:
    """``> 90.0 %``, ``< 5.00 s``, ``= 0``."""
    sign = {"higher": "≥", "lower": "≤", "zero": "="}[kpi["better"]]
    return f"{sign} {format_value(kpi, kpi['target'])}"
