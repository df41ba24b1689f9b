"""Scenario 6: soak — ``hephaestus serve`` cycling every 0.2 s; RSS, fds and threads stay flat.

The sample gets 40 modules of 40 functions without docstrings, and the brain may read all
of them, so it does not run out of objectives: every cycle is a real one (plan, pytest,
commit); the report lists every cycle's outcome. Spans go to the local
span file and to a local OTLP receiver. After a warm-up, the service process is sampled
from ``/proc`` every two seconds; the report gives each quantity's least-squares slope per
minute. Goals: RSS grows at most 1 MiB a minute, and the fewest open fds and threads of
the last quarter of the soak are no more than those of its first quarter (counts dip to
their resting level between cycles, so a leak raises the minimum).

    python -m benchmarks.soak                    # SOAK_SECONDS (default 100), SOAK_WARMUP
    SOAK_SECONDS=600 python -m benchmarks.soak   # the full ten-minute soak
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.fixtures import history, make_repo, otlp_receiver, serve
from benchmarks.harness import Report, knob, run, slope

SECONDS = knob("SOAK_SECONDS", 100, 6)
WARMUP = knob("SOAK_WARMUP", 20, 2)
EVERY = 2.0
MODULES, FUNCTIONS = 40, 40  # more docstrings to write than a soak can get through
# the brain reads source up to agent.max_prompt_source_bytes: let it see every module
SOURCE_BYTES = "400000"


def objectives_module(first: int, functions: int = FUNCTIONS) -> str:
    """A module whose every function lacks a docstring (one objective each)."""
    body = "".join(
        f"\n\ndef step_{n}(value: int) -> int:\n    return value + {n}\n"
        for n in range(first, first + functions)
    )
    return '"""Steps for the soak: each function is an objective for the agent."""\n' + body


def objective_modules() -> dict[str, str]:
    """``inventory/steps_NN.py`` -> its text, ``MODULES`` of them."""
    return {f"inventory/steps_{m:02d}.py": objectives_module(m * FUNCTIONS) for m in range(MODULES)}


@dataclass(frozen=True)
class Probe:
    """One look at a process: when (minutes since the first), RSS (MiB), open fds, threads."""

    minute: float
    rss_mib: float
    fds: int
    threads: int


def probe(pid: int, started: float) -> Probe:
    """Read ``/proc/<pid>`` once."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return Probe(
        minute=(time.monotonic() - started) / 60,
        rss_mib=int(status["VmRSS"].split()[0]) / 1024,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(status["Threads"]),
    )


def measure(report: Report) -> None:
    """Serve, warm up, sample; then slopes and the first-vs-last-quarter check."""
    with (
        tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp,
        otlp_receiver() as sink,
    ):
        repo = make_repo(Path(tmp) / "repo", extra=objective_modules())
        settings = {
            "HEPHAESTUS_TELEMETRY_OTLP_ENDPOINT": sink,
            "HEPHAESTUS_AGENT_MAX_PROMPT_SOURCE_BYTES": SOURCE_BYTES,
        }
        with serve(repo, interval=0.2, settings=settings) as service:
            service.wait_for_cycles(1)
            time.sleep(WARMUP)
            first = service.cycles_run() or 0
            started = time.monotonic()
            probes: list[Probe] = []
            while time.monotonic() - started < SECONDS and service.process.poll() is None:
                probes.append(probe(service.process.pid, started))
                time.sleep(EVERY)
            cycles = (service.cycles_run() or 0) - first
        outcomes = Counter(f"{row['outcome']}/{row['reason']}" for row in history(repo))
    report.row(
        f"{SECONDS:.0f} s after a {WARMUP:.0f} s warm-up: {cycles} cycles, {len(probes)} probes"
    )
    report.row(f"every cycle's outcome/reason: {dict(outcomes.most_common())}")
    _goals(report, probes)


def _goals(report: Report, probes: list[Probe]) -> None:
    quarter = max(1, len(probes) // 4)
    head, tail = probes[:quarter], probes[-quarter:]
    for name in ("rss_mib", "fds", "threads"):
        values = [getattr(p, name) for p in probes]
        per_minute = slope([(p.minute, getattr(p, name)) for p in probes])
        report.row(
            f"{name:<8} first {values[0]:8.1f}  last {values[-1]:8.1f}  "
            f"min {min(values):8.1f}  max {max(values):8.1f}  slope {per_minute:+.3f}/min"
        )
    by_minute = {int(p.minute): p.rss_mib for p in probes}  # the last probe of each minute
    report.row("RSS MiB at each minute's end: " + ", ".join(f"{v:.1f}" for v in by_minute.values()))
    rss_slope = slope([(p.minute, p.rss_mib) for p in probes])
    report.goal("soak: RSS slope", 1.0, "MiB/min", [rss_slope])
    for name in ("fds", "threads"):
        growth = min(getattr(p, name) for p in tail) - min(getattr(p, name) for p in head)
        report.goal(f"soak: fewest {name}, last quarter over first", 0, "", [growth])


if __name__ == "__main__":
    run("6 soak", measure)
