"""The shared harness: interleaved repetitions, statistics, goals and the report.

Machines are shared and noisy, so a benchmark never trusts one timing: every variant runs
once per round, in alternating order (A B C, then C B A, …) so drift hits them alike, after
a warm-up round that is thrown away; a goal is checked on the median of its per-round
values, and the report shows the median, min and max next to the goal.

Wall time on a shared machine is noisy enough that a median a few percent over a goal can
be luck. So each goal also carries a 90 % bootstrap confidence interval of what it
measures: *met* when the median is within the goal, *MISSED* when the whole interval lies
beyond it (the run shows the goal is not met), and *noise* in between (the run cannot tell;
the line prints the interval so the reader sees by how much).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
LEVEL = 0.90  # of every confidence interval

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")  # tiny counts: does it start?


def knob(name: str, default: float, quick: float) -> float:
    """A repetition count or duration: ``$name`` if set, else ``quick`` under BENCH_QUICK."""
    text = os.environ.get(name)
    if text:
        return float(text)
    return quick if QUICK else default


def count(name: str, default: int, quick: int) -> int:
    """An integer :func:`knob`."""
    return max(1, round(knob(name, default, quick)))


@dataclass(frozen=True)
class Stats:
    """Median, min and max of one measured quantity, and how many values it is made of."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        """The statistics of ``values`` (at least one)."""
        if not values:
            raise ValueError("no values to summarise")
        return cls(statistics.median(values), min(values), max(values), len(values))


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points; 0 for fewer than two distinct x."""
    if len(points) < 2:
        return 0.0
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def bootstrap(
    statistic: Callable[..., float], *samples: Sequence[T], resamples: int = 2000, seed: int = 1
) -> tuple[float, float]:
    """A :data:`LEVEL` percentile-bootstrap interval of ``statistic(*samples)``.

    Each sample is resampled with replacement on its own (an empty one stays empty), so a
    sample of processes keeps each process's values together. Seeded: the same values give
    the same interval.
    """
    rng = random.Random(seed)
    values = [
        statistic(*(rng.choices(s, k=len(s)) if s else [] for s in samples))
        for _ in range(resamples)
    ]
    tail = (1 - LEVEL) / 2
    return quantile(values, tail), quantile(values, 1 - tail)


def interleave(
    variants: Mapping[str, Callable[[], T]], rounds: int, warmup: int = 1
) -> dict[str, list[T]]:
    """Run each variant once per round, alternating the order; drop the warm-up rounds."""
    results: dict[str, list[T]] = {name: [] for name in variants}
    names = list(variants)
    for index in range(warmup + rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            value = variants[name]()
            if index >= warmup:
                results[name].append(value)
    return results


@dataclass(frozen=True)
class Goal:
    """A limit from the issue, the values it is checked on (their median), and their interval."""

    name: str
    limit: float
    unit: str
    measured: Stats
    interval: tuple[float, float] | None = None

    @property
    def met(self) -> bool:
        """Whether the median is within the limit."""
        return self.measured.median <= self.limit

    @property
    def missed(self) -> bool:
        """Whether the run shows the limit exceeded: the median, and the whole interval."""
        return not self.met and (self.interval is None or self.interval[0] > self.limit)

    @property
    def verdict(self) -> str:
        """``met``, ``noise`` (over, but the interval reaches the limit) or ``MISSED``."""
        return "met" if self.met else "MISSED" if self.missed else "noise"

    def line(self) -> str:
        """``verdict name goal <= limit measured median (interval, min … max, n)``."""
        m = self.measured
        interval = ""
        if self.interval is not None:
            low, high = self.interval
            interval = f"{LEVEL:.0%} CI {_fmt(low)} to {_fmt(high)}, "
        return (
            f"  {self.verdict:<6}  {self.name:<46} goal <= {_fmt(self.limit)}"
            f"{self.unit:<3} measured {_fmt(m.median)}{self.unit} "
            f"({interval}min {_fmt(m.low)}, max {_fmt(m.high)}, n={m.n})"
        )


def _fmt(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


@dataclass
class Report:
    """What one scenario measured: informational rows, then its goals."""

    scenario: str
    rows: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)

    def row(self, text: str) -> None:
        """Add an informational line (printed as it comes, so a long run shows progress)."""
        self.rows.append(text)
        print(f"  {text}", flush=True)

    def goal(
        self,
        name: str,
        limit: float,
        unit: str,
        values: Sequence[float],
        interval: tuple[float, float] | None = None,
    ) -> Goal:
        """Check ``values``' median against ``limit`` and print the goal line.

        ``interval`` defaults to the bootstrap interval of the values' median (from five
        values up); a scenario whose values are not independent passes its own.
        """
        if interval is None and len(values) >= 5:
            interval = bootstrap(statistics.median, values)
        goal = Goal(name, limit, unit, Stats.of(values), interval)
        self.goals.append(goal)
        print(goal.line(), flush=True)
        return goal

    @property
    def ok(self) -> bool:
        """No goal missed (met, or over but within the noise)."""
        return not any(goal.missed for goal in self.goals)

    def to_json(self) -> dict[str, object]:
        """The report as plain data (for the combined summary of ``benchmarks.run``)."""
        return {
            "scenario": self.scenario,
            "rows": self.rows,
            "goals": [
                {
                    **asdict(g),
                    "met": g.met,
                    "missed": g.missed,
                    "verdict": g.verdict,
                    "line": g.line(),
                }
                for g in self.goals
            ],
        }


def main(scenario: str, measure: Callable[[Report], None]) -> int:
    """Run one scenario as a program: print its report; exit 1 when a goal is missed."""
    parser = argparse.ArgumentParser(description=f"benchmark: {scenario}")
    parser.add_argument("--json", type=Path, help="also write the report to this JSON file")
    args = parser.parse_args()
    report = Report(scenario)
    print(f"== {scenario}", flush=True)
    measure(report)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2))
    return 0 if report.ok else 1


def run(scenario: str, measure: Callable[[Report], None]) -> None:
    """``sys.exit(main(...))`` for a scenario module's ``__main__`` block."""
    sys.exit(main(scenario, measure))
