"""Start-up: the commands an operator types by hand answer at once.

``hephaestus --help``, ``config show`` and ``history`` (on a repository with a recorded
cycle) each run in a new interpreter, interleaved with a bare ``python -c pass`` measured
in the same rounds: the interpreter's own start-up is printed next to each command, and
the goal is on each command's wall time, spawn to exit.

    python -m benchmarks.startup   # BENCH_STARTUP_ROUNDS
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.fixtures import HEPHAESTUS, agent_env, hephaestus, make_repo
from benchmarks.harness import Report, count, interleave, quantile, run

ROUNDS = count("BENCH_STARTUP_ROUNDS", 21, 3)
GOAL_SECONDS = 0.3


def timed(argv: Sequence[str], env: dict[str, str]) -> Callable[[], float]:
    """Wall seconds of one ``argv`` process, spawn to exit; a failure stops the benchmark."""

    def once() -> float:
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        return time.perf_counter() - started

    return once


def measure(report: Report) -> None:
    """Interleave the commands with a bare interpreter; the goal on each command's p50."""
    env = agent_env()
    with tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp:
        repo = make_repo(Path(tmp) / "repo")
        hephaestus("run", "--project", str(repo), "--cycles", "1", env=env)
        commands = {
            "--help": [*HEPHAESTUS, "--help"],
            "config show": [*HEPHAESTUS, "config", "show"],
            "history": [*HEPHAESTUS, "history", "--project", str(repo)],
        }
        variants = {"python -c pass": timed([sys.executable, "-c", "pass"], env)}
        variants |= {name: timed(argv, env) for name, argv in commands.items()}
        times = interleave(variants, ROUNDS, warmup=2)
    bare = quantile(times.pop("python -c pass"), 0.5)
    report.row(f"python -c pass: p50 {bare * 1000:.0f} ms (the interpreter alone)")
    for name, values in times.items():
        p50 = quantile(values, 0.5)
        report.row(f"hephaestus {name}: p50 {p50 * 1000:.0f} ms, {p50 / bare:.1f}x the bare one")
        report.goal(f"hephaestus {name} starts and exits", GOAL_SECONDS, "s", values)


if __name__ == "__main__":
    run("7 start-up of the hand-typed commands", measure)
