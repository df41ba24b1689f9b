"""``make bench``: every scenario in a process of its own, then every goal in one table.

    python -m benchmarks.run                       # every scenario
    python -m benchmarks.run stage_helper soak     # some of them
    python -m benchmarks.run instructions          # opt-in: needs valgrind, two minutes more
    BENCH_QUICK=1 python -m benchmarks.run         # tiny counts: does everything start?

Exit status 1 when a goal is missed or a scenario fails to run. Counts and durations are
read from the environment (each scenario's docstring names its variables).
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
    "broken_collector",
    "cycle_latency",
    "startup",
    "soak",
)
OPT_IN = ("instructions",)  # run only when named


def run_scenario(name: str, out: Path) -> tuple[int, list[dict[str, object]]]:
    """Run ``benchmarks.<name>`` in a new interpreter; its exit code and goals."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--json", str(out)], cwd=ROOT, check=False
    )
    goals = json.loads(out.read_text())["goals"] if out.exists() else []
    return done.returncode, goals


def main(names: list[str]) -> int:
    """Run the named scenarios (all by default) and print the summary."""
    unknown = sorted(set(names) - set(SCENARIOS) - set(OPT_IN))
    if unknown:
        choices = [*SCENARIOS, *OPT_IN]
        print(f"unknown scenario(s) {unknown}; choose from {choices}", file=sys.stderr)
        return 2
    started = time.monotonic()
    print(f"machine: {machine()}", flush=True)
    lines: list[str] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp:
        for name in names or SCENARIOS:
            code, goals = run_scenario(name, Path(tmp) / f"{name}.json")
            lines += [str(goal["line"]) for goal in goals]
            if code != 0:
                missed = not all(goal["met"] for goal in goals)
                failed.append(f"{name} ({'goal missed' if missed else f'crashed, exit {code}'})")
    print(f"\n== summary ({time.monotonic() - started:.0f} s; machine now: {machine()})")
    print("\n".join(lines))
    print("all goals met" if not failed else f"NOT MET: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
