"""Scenarios 1 and 2: what telemetry costs a full cycle, and a broken collector's exit.

Every run is a ``hephaestus run`` process of its own on a fresh copy of the sample, with
the default validation (syntax, then the project's pytest suite):

- off: ``telemetry.enabled = false`` and ``OTEL_SDK_DISABLED=true`` (no-op tracer, no
  exporter, no pytest plugin; prometheus-client still counts, the product has no switch);
- on: OTLP/HTTP to a local receiver that takes every export, and the local span file.

Per-cycle times come from the agent's own record (``hephaestus history --json``); a
process's first cycle also collects the base's tests, so it is a warm-up and not counted.
The counted cycles of every round are pooled and the goal is on their medians. Rounds
are many and processes short, because a process's speed differs from the next one's by
several percent on a shared machine (more than cycles within one process differ): more
processes, not more cycles in each, are what narrow the estimate.

The exit check runs ``hephaestus run --cycles 1`` against the healthy receiver, a dead
collector (a port nobody listens on) and a silent one (accepts, never answers): its time
outside the cycle (start-up and shutdown flush) with a broken collector against the
healthy one. What a broken collector costs each cycle is measured within one process, in
:mod:`benchmarks.broken_collector`.

    python -m benchmarks.telemetry_overhead   # BENCH_ROUNDS, BENCH_CYCLES, BENCH_EXIT_ROUNDS
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.fixtures import (
    agent_env,
    blackhole,
    clone,
    cycle_seconds,
    free_port,
    hephaestus,
    history,
    machine,
    make_repo,
    otlp_receiver,
)
from benchmarks.harness import QUICK, Report, bootstrap, count, interleave, run

ROUNDS = count("BENCH_ROUNDS", 6, 1)
CYCLES = count("BENCH_CYCLES", 4, 1)
EXIT_ROUNDS = count("BENCH_EXIT_ROUNDS", 3, 1)
OFF = {"HEPHAESTUS_TELEMETRY_ENABLED": "false", "OTEL_SDK_DISABLED": "true"}


@dataclass(frozen=True)
class Sample:
    """One ``hephaestus run`` process: its wall time and its cycles' times and outcomes."""

    wall: float
    cpu: float
    cycles: list[float]
    outcomes: list[str]
    validate: list[float] = field(default_factory=list)

    @property
    def counted(self) -> list[float]:
        """Cycle times, the warm-up cycle left out when there is more than one."""
        return self.cycles[1:] or self.cycles

    @property
    def own(self) -> list[float]:
        """Cycle times outside the validate stage (pytest's time), warm-up left out."""
        own = [c - v for c, v in zip(self.cycles, self.validate, strict=True)]
        return own[1:] or own

    @property
    def outside(self) -> float:
        """Time the process spent outside its cycles: start-up, setup and shutdown."""
        return self.wall - sum(self.cycles)


def runner(
    template: Path, workdir: Path, settings: Mapping[str, str], cycles: int
) -> Callable[[], Sample]:
    """A function that runs ``cycles`` cycles on a fresh copy of ``template``."""
    numbers = itertools.count()

    def one() -> Sample:
        repo = clone(template, workdir / f"run{next(numbers)}")
        try:
            done = hephaestus(
                "run", "--project", str(repo), "--cycles", str(cycles), env=agent_env(settings)
            )
            rows = history(repo)
        finally:
            shutil.rmtree(repo, ignore_errors=True)
        times = [cycle_seconds(r) for r in rows]
        validate = [r["durations"].get("validate", 0.0) for r in rows]
        return Sample(done.wall, done.cpu, times, [r["outcome"] for r in rows], validate)

    return one


def measure(report: Report) -> None:
    """Interleave the four set-ups; then the exit time with ``--cycles 1``."""
    report.row(f"machine: {machine()}")
    with (
        tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp,
        otlp_receiver() as sink,
        blackhole() as hole,
    ):
        workdir = Path(tmp)
        template = make_repo(workdir / "template")
        collectors = {
            "on": {"HEPHAESTUS_TELEMETRY_OTLP_ENDPOINT": sink},
            "dead": {"HEPHAESTUS_TELEMETRY_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
            "silent": {"HEPHAESTUS_TELEMETRY_OTLP_ENDPOINT": hole},
        }
        setups = {"off": OFF, "on": collectors["on"]}
        if not QUICK:
            runner(template, workdir, OFF, 1)()  # warm-up: bytecode and page caches
        report.row(f"{ROUNDS} rounds x {len(setups)} set-ups x {CYCLES} cycles (first not counted)")
        samples = interleave(
            {name: runner(template, workdir, env, CYCLES) for name, env in setups.items()},
            ROUNDS,
            warmup=0,
        )
        _cycle_goals(report, samples)
        report.row(f"exit time: {EXIT_ROUNDS} rounds of `hephaestus run --cycles 1`")
        exits = interleave(
            {name: runner(template, workdir, env, 1) for name, env in collectors.items()},
            EXIT_ROUNDS,
            warmup=0,
        )
        _exit_goals(report, exits)


def pooled(runs: list[Sample], values: Callable[[Sample], list[float]]) -> list[float]:
    """The values of every run of one set-up, in one list."""
    return [v for run in runs for v in values(run)]


def _cycle_goals(report: Report, samples: dict[str, list[Sample]]) -> None:
    for name, runs in samples.items():
        cycles = pooled(runs, lambda s: s.counted)
        report.row(
            f"{name:<7} cycle median {statistics.median(cycles) * 1000:7.0f} ms over "
            f"{len(cycles)} cycles (min {min(cycles) * 1000:.0f}, max {max(cycles) * 1000:.0f}); "
            f"outside validate {statistics.median(pooled(runs, lambda s: s.own)) * 1000:.0f} ms;"
            f" outcomes {runs[0].outcomes}"
        )
    if len({tuple(s.outcomes) for runs in samples.values() for s in runs}) > 1:
        report.row("warning: the set-ups' cycles did not all end alike; compare with care")
    off, on = samples["off"], samples["on"]
    cpu = [b.cpu / a.cpu for a, b in zip(off, on, strict=True)]
    report.row(
        f"CPU seconds of the agent processes, on / off: median {statistics.median(cpu):.3f}x "
        f"(min {min(cpu):.3f}, max {max(cpu):.3f}); start-up included, and the sandboxed "
        "pytest runs' CPU is not handed up through bubblewrap's PID namespace"
    )
    baseline = statistics.median(pooled(off, lambda s: s.counted))
    report.goal(
        "telemetry on / off, cycle time",
        1.03,
        "x",
        [cycle / baseline for cycle in pooled(on, lambda s: s.counted)],
        interval=bootstrap(ratio_of_medians, on, off),
    )


def ratio_of_medians(on: list[Sample], off: list[Sample]) -> float:
    """The median counted cycle of ``on`` over that of ``off``.

    Bootstrapped over processes, not cycles: a process's cycles share its luck.
    """
    return statistics.median(pooled(on, lambda s: s.counted)) / statistics.median(
        pooled(off, lambda s: s.counted)
    )


def _exit_goals(report: Report, exits: dict[str, list[Sample]]) -> None:
    healthy = exits["on"]
    for name, runs in exits.items():
        report.row(
            f"{name:<7} run --cycles 1: wall median {statistics.median(s.wall for s in runs):.2f}"
            f" s, outside the cycle {statistics.median(s.outside for s in runs):.2f} s"
        )
    for broken in ("dead", "silent"):
        report.goal(
            f"{broken} collector: run --cycles 1 ends after healthy",
            0.2,
            "s",
            [b.outside - a.outside for a, b in zip(healthy, exits[broken], strict=True)],
        )


if __name__ == "__main__":
    run("1-2 telemetry overhead and broken collectors", measure)
