"""The KPI targets and the SLOs built on them: the one table every rule and panel reads.

Change a target here and run ``make generate``: the recording rules, the alerts, the
dashboards' thresholds and the SLO panels all follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["critical", "warning"]

JOB = "hephaestus"
"""The Prometheus scrape job of the agent (``deploy/prometheus/prometheus.yml``)."""

SLO_PERIOD = "30d"
"""The period over which an SLO's error budget is counted."""

SLO_PERIOD_HOURS = 30 * 24


@dataclass(frozen=True)
class Targets:
    """The KPI targets the rules, alerts and dashboards watch (docs/observability.md)."""

    success_ratio: float = 0.90
    """Share of cycles that commit a validated change (succeeded / all cycles)."""
    agent_response_p95_seconds: float = 5.0
    """95th percentile of an LLM-backed agent's response time."""
    objectives_per_day: float = 100.0
    """Cycles finished in 24 hours."""
    availability: float = 0.999
    """Share of scrapes in which the agent answered (``up``)."""
    mttr_seconds: float = 30.0
    """Mean time from the first failed cycle of a streak to the success that ends it."""
    internal_errors: float = 0.0
    """Cycles that ended with ``internal_error`` (a bug in the agent)."""
    stalled_after: str = "15m"
    """An agent that is up but finished no cycle for this long is stalled."""


TARGETS = Targets()


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window burn-rate condition: both windows above ``factor`` times the budget."""

    long: str
    short: str
    factor: float
    severity: Severity

    @property
    def long_hours(self) -> float:
        """The long window in hours."""
        return duration_hours(self.long)

    def budget_spent(self) -> float:
        """Share of the whole period's budget spent while this condition holds for ``long``."""
        return self.factor * self.long_hours / SLO_PERIOD_HOURS


@dataclass(frozen=True)
class SLO:
    """A service-level objective with its multi-window, multi-burn-rate alert tiers."""

    name: str
    title: str
    objective: float
    alert: str
    windows: tuple[BurnWindow, ...]
    bad_events: str
    """What the errors are, as a description says it (``scrapes failed``)."""
    min_events: int = 0
    """Events the long window must hold before a tier may fire (0: no minimum)."""

    @property
    def budget(self) -> float:
        """The error budget: the share of events allowed to be bad."""
        return round(1 - self.objective, 10)

    def error_threshold(self, window: BurnWindow) -> float:
        """The error ratio above which ``window`` burns too fast."""
        return round(window.factor * self.budget, 10)


def duration_hours(text: str) -> float:
    """Hours in a Prometheus duration of one unit (``5m``, ``6h``, ``3d``)."""
    units = {"m": 1 / 60, "h": 1.0, "d": 24.0}
    return float(text[:-1]) * units[text[-1]]


# The SRE workbook's tiers for a 30-day budget: page at 14.4x over 1h (2 % of the budget
# spent in an hour) or 6x over 6h (5 %), ticket at 3x over 1d (10 %) or 1x over 3d (10 %).
# At a 90 % objective the budget is 10 % of cycles, so a burn rate can never exceed 10
# (every cycle failing): 14.4x would need an error ratio of 1.44 and could never fire. The
# success SLO therefore pages at 8x over 1h (80 % of cycles not succeeding, 1.1 % of the
# budget in an hour), the highest factor that still leaves room for the odd success, and
# keeps the workbook's 6x, 3x and 1x, which a 90 % objective can reach.
SUCCESS_SLO = SLO(
    name="success_rate",
    title="Cycle success rate",
    objective=TARGETS.success_ratio,
    alert="HephaestusSuccessRateBudgetBurn",
    windows=(
        BurnWindow("1h", "5m", 8, "critical"),
        BurnWindow("6h", "30m", 6, "critical"),
        BurnWindow("1d", "2h", 3, "warning"),
        BurnWindow("3d", "6h", 1, "warning"),
    ),
    bad_events="cycles did not succeed",
    min_events=10,
)

AVAILABILITY_SLO = SLO(
    name="availability",
    title="Availability (up)",
    objective=TARGETS.availability,
    alert="HephaestusAvailabilityBudgetBurn",
    windows=(
        BurnWindow("1h", "5m", 14.4, "critical"),
        BurnWindow("6h", "30m", 6, "critical"),
        BurnWindow("1d", "2h", 3, "warning"),
        BurnWindow("3d", "6h", 1, "warning"),
    ),
    bad_events="scrapes failed",
)

SLOS = (SUCCESS_SLO, AVAILABILITY_SLO)


def slo_windows(slo: SLO) -> tuple[str, ...]:
    """Every window an SLO's rules need, shortest first."""
    windows = {w for pair in slo.windows for w in (pair.long, pair.short)}
    return tuple(sorted(windows, key=duration_hours))
