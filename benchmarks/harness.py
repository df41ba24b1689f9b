"""The shared harness: interleaved repetitions, statistics, goals and the report.

Machines are shared and noisy, so a benchmark never trusts one timing: every variant runs
once per round, in alternating order (A B C, then C B A, …) so drift hits them alike, after
a warm-up round that is thrown away; a goal is checked on the median of its per-round
values, and the report shows the median, min and max next to the goal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

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
    """A limit from the issue and the per-round values it is checked on (their median)."""

    name: str
    limit: float
    unit: str
    measured: Stats

    @property
    def met(self) -> bool:
        """Whether the median is within the limit."""
        return self.measured.median <= self.limit

    def line(self) -> str:
        """``goal ≤ limit | measured median (min … max, n) | met/MISSED``."""
        m = self.measured
        return (
            f"  {'met   ' if self.met else 'MISSED'}  {self.name:<46} goal <= {_fmt(self.limit)}"
            f"{self.unit:<3} measured {_fmt(m.median)}{self.unit} "
            f"(min {_fmt(m.low)}, max {_fmt(m.high)}, n={m.n})"
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

    def goal(self, name: str, limit: float, unit: str, values: Sequence[float]) -> Goal:
        """Check ``values``' median against ``limit`` and print the goal line."""
        goal = Goal(name, limit, unit, Stats.of(values))
        self.goals.append(goal)
        print(goal.line(), flush=True)
        return goal

    @property
    def ok(self) -> bool:
        """Every goal met."""
        return all(goal.met for goal in self.goals)

    def to_json(self) -> dict[str, object]:
        """The report as plain data (for the combined summary of ``benchmarks.run``)."""
        return {
            "scenario": self.scenario,
            "rows": self.rows,
            "goals": [{**asdict(g), "met": g.met, "line": g.line()} for g in self.goals],
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
