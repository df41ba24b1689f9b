"""Scenario 5: cycle latency at 1x, 10x and 100x the sample, against the floor.

The floor is the work no agent can skip, measured here in the same run: a git worktree of
the base, a one-line change, the project's plain pytest suite (the agent's pytest
arguments, no plugins), the change committed in the target, the worktree removed. The
agent (``hephaestus run``, offline, tests unsandboxed like the floor's) runs the same
repositories, in two processes with floor runs before, between and after them (a
process's speed differs from the next one's by several percent on a shared machine, so
one process's luck does not decide a size); what it spends over the floor is its own time.
The bigger repositories copy the sample's package (not its tests), so the suite stays the
same and only the size grows.

Goals: the agent's p50 cycle over the floor's p50 at every size, and scan + workspace time
(the scan stage plus what the cycle spends outside any stage: the worktree's removal) not
growing with the repository: at 100x at most 100 ms over 1x.

    python -m benchmarks.cycle_latency   # BENCH_LATENCY_CYCLES/_RUNS, BENCH_FLOOR_RUNS, BENCH_SIZES
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.fixtures import agent_env, clone, cycle_seconds, git, hephaestus, history, make_repo
from benchmarks.harness import QUICK, Report, count, quantile, run

CYCLES = count("BENCH_LATENCY_CYCLES", 4, 1)  # a process; the first is not counted
AGENT_RUNS = count("BENCH_LATENCY_RUNS", 2, 1)  # processes a size: each has its own luck
FLOOR_RUNS = count("BENCH_FLOOR_RUNS", 3, 1)  # before, between and after the agent's runs
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "1,2" if QUICK else "1,10,100").split(",")]
PYTEST_ARGS = ["-q", "-x", "-p", "no:cacheprovider"]  # validation.pytest_args' default
SETTINGS = {"HEPHAESTUS_VALIDATION_SANDBOX": "none"}
CHANGED = "inventory/__init__.py"


def floor_once(repo: Path, workdir: Path) -> float:
    """One floor cycle on ``repo``: worktree, change, plain pytest, commit, removal."""
    tree = workdir / "floor-worktree"
    started = time.perf_counter()
    git(repo, "worktree", "add", "-q", "--detach", str(tree), "HEAD")
    with (tree / CHANGED).open("a") as changed:
        changed.write("# floor\n")
    subprocess.run(
        [sys.executable, "-m", "pytest", *PYTEST_ARGS],
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    shutil.copyfile(tree / CHANGED, repo / CHANGED)
    git(repo, "add", "--", CHANGED)
    git(repo, "commit", "-q", "-m", "chore: floor")
    git(repo, "worktree", "remove", "--force", str(tree))
    return time.perf_counter() - started


def agent_cycles(repo: Path) -> list[dict[str, Any]]:
    """The agent's recorded cycles on ``repo``, its first (warm-up) cycle left out."""
    hephaestus("run", "--project", str(repo), "--cycles", str(CYCLES), env=agent_env(SETTINGS))
    rows = history(repo)
    return rows[1:] or rows


def scan_and_workspace(row: Mapping[str, Any]) -> float:
    """The scan stage plus the cycle's time outside any stage (seconds)."""
    durations = row["durations"]
    return durations.get("scan", 0.0) + cycle_seconds(row) - sum(durations.values())


def measure(report: Report) -> None:
    """Floor, then each agent run followed by the floor again, at each size."""
    spread: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp:
        workdir = Path(tmp)
        for size in SIZES:
            template = make_repo(workdir / f"x{size}", copies=size)
            files = len(git(template, "ls-files").splitlines())
            floor_repo = clone(template, workdir / f"floor{size}")
            floor = [floor_once(floor_repo, workdir) for _ in range(FLOOR_RUNS)]
            rows: list[dict[str, Any]] = []
            for index in range(AGENT_RUNS):
                rows += agent_cycles(clone(template, workdir / f"agent{size}-{index}"))
                floor += [floor_once(floor_repo, workdir) for _ in range(FLOOR_RUNS)]
            spread[size] = [scan_and_workspace(row) for row in rows]
            _size_report(report, size, files, floor, rows)
    smallest, largest = min(spread), max(spread)
    if largest > smallest:
        base = quantile(spread[smallest], 0.5)
        report.goal(
            f"scan + workspace growth, {largest}x over {smallest}x",
            100.0,
            "ms",
            [(value - base) * 1000 for value in spread[largest]],
        )


def _size_report(
    report: Report, size: int, files: int, floor: Sequence[float], rows: Sequence[Mapping[str, Any]]
) -> None:
    cycles = [cycle_seconds(row) for row in rows]
    outcomes = sorted({row["outcome"] for row in rows})
    report.row(
        f"{size}x ({files} files): floor p50 {quantile(floor, 0.5) * 1000:.0f} ms; "
        f"agent cycle p50 {quantile(cycles, 0.5) * 1000:.0f} ms, "
        f"p95 {quantile(cycles, 0.95) * 1000:.0f} ms over {len(rows)} cycles {outcomes}"
    )
    stages = {stage for row in rows for stage in row["durations"]}
    parts = {s: [row["durations"].get(s, 0.0) for row in rows] for s in sorted(stages)}
    parts["scan+workspace"] = [scan_and_workspace(row) for row in rows]
    report.row(
        "    per stage p50/p95 ms: "
        + ", ".join(
            f"{s} {quantile(v, 0.5) * 1000:.0f}/{quantile(v, 0.95) * 1000:.0f}"
            for s, v in parts.items()
        )
    )
    base = quantile(floor, 0.5)
    report.goal(
        f"agent over the floor at {size}x", 150.0, "ms", [(c - base) * 1000 for c in cycles]
    )


if __name__ == "__main__":
    run("5 cycle latency against the floor", measure)
