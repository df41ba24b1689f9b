"""What a source measured over a time window, in one shape whatever the source.

Sources: the memory database (:mod:`hephaestus.performance.memory_source`) or a Prometheus
server (:mod:`hephaestus.performance.prometheus_source`). ``None`` always means "not
measured", never zero.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hephaestus.agent.models import AGENT_OF_STAGE

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_window(text: str) -> float:
    """``30m``, ``24h``, ``7d`` … as seconds; a ``ValueError`` names the accepted forms."""
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"{text!r} is not a duration; use a positive number and a unit s, m, h, d or w "
            "(e.g. 30m, 24h, 7d)"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile (nearest rank) of ``values``, or ``None`` when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class TimeStat:
    """Where time went for one stage or model: total seconds, samples and their p95."""

    total_s: float
    count: int
    p95_s: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {"total_s": self.total_s, "count": self.count, "p95_s": self.p95_s}


@dataclass
class Measurements:
    """Cycles, time and reliability over ``window_s`` seconds, as ``source`` saw them."""

    source: str
    window_s: float
    observed_s: float = 0.0  # how much of the window the data actually covers
    cycles: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    cycle_time_s: float = 0.0
    cycle_p95_s: float | None = None
    stages: dict[str, TimeStat] = field(default_factory=dict)
    agent_p95_s: float | None = None
    models: dict[str, TimeStat] = field(default_factory=dict)
    llm_calls: int | None = None
    mttr_s: float | None = None
    recoveries: int = 0
    internal_error_ids: list[str] = field(default_factory=list)
    uptime_ratio: float | None = None
    retries: int | None = None
    breaker_opens: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        """Cycles that committed a validated change."""
        return self.outcomes.get("succeeded", 0)

    @property
    def success_rate(self) -> float | None:
        """Succeeded over all cycles."""
        return self.succeeded / self.cycles if self.cycles else None

    @property
    def internal_errors(self) -> int:
        """Cycles that failed with ``internal_error``."""
        return self.reasons.get("internal_error", 0)

    @property
    def per_day(self) -> float | None:
        """Cycles per day at the observed pace (needs ten minutes of observation)."""
        if self.observed_s < 600:
            return None
        return self.cycles / self.observed_s * 86400

    @property
    def llm_time_s(self) -> float:
        """Seconds spent in stages that call a model."""
        return sum(self.stages[s].total_s for s in AGENT_OF_STAGE if s in self.stages)

    def share(self, seconds: float) -> float | None:
        """``seconds`` as a share of all cycle time."""
        return seconds / self.cycle_time_s if self.cycle_time_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {
            "source": self.source,
            "window_s": self.window_s,
            "observed_s": round(self.observed_s, 3),
            "cycles": self.cycles,
            "outcomes": self.outcomes,
            "reasons": self.reasons,
            "success_rate": self.success_rate,
            "cycle_time_s": round(self.cycle_time_s, 3),
            "cycle_p95_s": self.cycle_p95_s,
            "agent_p95_s": self.agent_p95_s,
            "stages": {name: stat.to_dict() for name, stat in self.stages.items()},
            "models": {name: stat.to_dict() for name, stat in self.models.items()},
            "llm_calls": self.llm_calls,
            "mttr_s": self.mttr_s,
            "recoveries": self.recoveries,
            "internal_errors": self.internal_errors,
            "internal_error_ids": self.internal_error_ids,
            "uptime_ratio": self.uptime_ratio,
            "per_day": self.per_day,
            "retries": self.retries,
            "breaker_opens": self.breaker_opens,
            "notes": self.notes,
        }
