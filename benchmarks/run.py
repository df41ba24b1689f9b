"""``make bench``: every scenario in a process of its own, then every goal in one table.

    python -m benchmarks.run                       # every scenario
    python -m benchmarks.run stage_helper soak     # some of them
    python -m benchmarks.run instructions          # scenario 1 in CPU instructions (valgrind)
    BENCH_QUICK=1 python -m benchmarks.run         # tiny counts: does everything start?

Exit status 1 when a goal is missed (its whole confidence interval beyond it) or a scenario
fails to run; a goal whose median is over but whose interval reaches it is *noise* and
named in the last line. Counts and durations are read from the environment (each
scenario's docstring names its variables).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.fixtures import ROOT, machine

SCENARIOS = (
    "stage_helper",
    "metrics_render",
    "telemetry_overhead",
    "instructions",
    "broken_collector",
    "cycle_latency",
    "startup",
    "soak",
)


def run_scenario(name: str, out: Path) -> tuple[int, list[dict[str, object]]]:
    """Run ``benchmarks.<name>`` in a new interpreter; its exit code and goals."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--json", str(out)], cwd=ROOT, check=False
    )
    goals = json.loads(out.read_text())["goals"] if out.exists() else []
    return done.returncode, goals


def main(names: list[str]) -> int:
    """Run the named scenarios (all by default) and print the summary."""
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        print(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    print(f"machine: {machine()}", flush=True)
    lines: list[str] = []
    failed: list[str] = []
    noise: list[str] = []
    took: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp:
        for name in names or SCENARIOS:
            begun = time.monotonic()
            code, goals = run_scenario(name, Path(tmp) / f"{name}.json")
            took.append(f"{name} {time.monotonic() - begun:.0f}")
            lines += [str(goal["line"]) for goal in goals]
            noise += [str(goal["name"]) for goal in goals if goal["verdict"] == "noise"]
            if code != 0:
                missed = any(goal["missed"] for goal in goals)
                failed.append(f"{name} ({'goal missed' if missed else f'crashed, exit {code}'})")
    print(f"\n== summary ({time.monotonic() - started:.0f} s; machine now: {machine()})")
    print(f"  seconds a scenario: {', '.join(took)}")
    print("\n".join(lines))
    print(verdict(failed, noise))
    return 1 if failed else 0


def verdict(failed: list[str], noise: list[str]) -> str:
    """The summary's last line: what was missed, else what the noise left undecided."""
    if failed:
        return f"NOT MET: {', '.join(failed)}"
    if noise:
        return f"no goal missed; over the goal but within the noise: {', '.join(noise)}"
    return "all goals met"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
