"""Scenario 1 counted in CPU instructions: what telemetry adds to a cycle, exactly.

Wall time on a shared virtual machine varies by ±20 % from one second to the next (a fixed
CPU loop, timed back to back), so a few percent between telemetry on and off is within
the noise of any run that fits in ``make bench``. Instructions, counted by valgrind's
cachegrind, repeat to about 0.05 % from run to run. This counts them for the same two
set-ups as :mod:`benchmarks.telemetry_overhead` (off: telemetry disabled and the no-op
SDK; on: OTLP/HTTP to a local receiver and the local span file):

- the agent process, every thread (the exporters' too): per cycle, the difference between
  a process of ``CYCLES + 1`` cycles and one of a single cycle, divided by ``CYCLES``, so
  start-up and shutdown cancel out;
- the validation pytest process, per run (the median of the counted runs).

git's processes run natively and are not counted (the same commands on and off); the
tests run unsandboxed, because bubblewrap's namespaces cannot run under valgrind. Under
valgrind a cycle takes about ``SLOWDOWN`` times as long, so the exporters' schedule delay
(0.5 s by default) is stretched by that factor: each cycle's spans then leave in as many
batches as at full speed (with the default delay, ten times as many exports a cycle added
about 7 M instructions). The count is stricter than cycle time: work the exporter threads
do on another core while pytest runs costs instructions but not wall time.

    python -m benchmarks.instructions   # make bench-instructions; BENCH_INSTRUCTION_CYCLES
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks.fixtures import (
    HEPHAESTUS,
    agent_env,
    clone,
    compile_agent,
    make_repo,
    otlp_receiver,
)
from benchmarks.harness import Report, count, run
from benchmarks.telemetry_overhead import OFF

CYCLES = count("BENCH_INSTRUCTION_CYCLES", 2, 1)
SLOWDOWN = 12  # a sample cycle: about 15 s under cachegrind, 1.2-1.3 s at full speed
SCHEDULE_DELAY = {"HEPHAESTUS_TELEMETRY_SCHEDULE_DELAY": str(0.5 * SLOWDOWN)}
_COUNT = re.compile(r"I\s+refs:\s+([\d,]+)")
_COMMAND = re.compile(r"Command: (.*)")


@dataclass(frozen=True)
class Counted:
    """Instructions of one ``hephaestus run``: the agent process, and each pytest run."""

    agent: int
    pytest_runs: list[int]


def counted(template: Path, workdir: Path, settings: Mapping[str, str], cycles: int) -> Counted:
    """Run ``cycles`` cycles under cachegrind on a fresh copy of ``template``."""
    compile_agent()
    repo = clone(template, workdir / "repo")
    logs = workdir / "logs"
    logs.mkdir()
    try:
        subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                "--cachegrind-out-file=/dev/null",
                f"--log-file={logs}/%p.log",
                "--trace-children=yes",
                "--trace-children-skip=*git*",
                *HEPHAESTUS,
                *("run", "--project", str(repo), "--cycles", str(cycles)),
            ],
            env=agent_env({**settings, **SCHEDULE_DELAY, "HEPHAESTUS_VALIDATION_SANDBOX": "none"}),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=1800,
        )
    finally:
        shutil.rmtree(repo, ignore_errors=True)
    return _read_logs(logs)


def _read_logs(logs: Path) -> Counted:
    agent, pytest_runs = 0, []
    for log in logs.glob("*.log"):
        text = log.read_text(errors="replace")
        found, command = _COUNT.search(text), _COMMAND.search(text)
        if found is None or command is None:
            continue  # a child that exec'd git: not traced
        instructions = int(found.group(1).replace(",", ""))
        if "-m pytest" not in command.group(1):
            agent += instructions
        elif "--collect-only" not in command.group(1):
            pytest_runs.append(instructions)
    return Counted(agent, pytest_runs)


def measure(report: Report) -> None:
    """Both set-ups, one cycle and ``CYCLES + 1`` cycles, two processes at a time."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing: `make bench-instructions` installs it as root")
    compile_agent()  # once, before two processes at a time would start on stale bytecode
    with tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp, otlp_receiver() as sink:
        workdir = Path(tmp)
        template = make_repo(workdir / "template")
        setups = {"off": OFF, "on": {"HEPHAESTUS_TELEMETRY_OTLP_ENDPOINT": sink}}
        jobs = [(name, n) for n in (1, CYCLES + 1) for name in setups]

        def job(key: tuple[str, int]) -> Counted:
            name, n = key
            (workdir / f"{name}{n}").mkdir()
            return counted(template, workdir / f"{name}{n}", setups[name], n)

        with ThreadPoolExecutor(2) as pool:  # instructions do not depend on the load
            results = dict(zip(jobs, pool.map(job, jobs), strict=True))
    per_cycle = {}
    for name in setups:
        one, many = results[(name, 1)], results[(name, CYCLES + 1)]
        agent = (many.agent - one.agent) / CYCLES
        runs = one.pytest_runs + many.pytest_runs
        pytest = statistics.median(runs)
        per_cycle[name] = agent + pytest
        report.row(
            f"{name:<4} a cycle: agent {agent / 1e6:7.1f} M (every thread), pytest "
            f"{pytest / 1e6:7.1f} M (median of {len(runs)} runs, {min(runs) / 1e6:.1f}-"
            f"{max(runs) / 1e6:.1f}); a one-cycle agent process in all {one.agent / 1e6:.0f} M"
        )
    report.goal(
        "telemetry on / off, CPU instructions a cycle",
        1.03,
        "x",
        [per_cycle["on"] / per_cycle["off"]],
    )


if __name__ == "__main__":
    run("1 telemetry overhead in CPU instructions", measure)
