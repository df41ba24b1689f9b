"""Telemetry overhead, measured as ratios in one run (machines are shared and noisy).

Each scenario runs the same offline cycles (syntax-only validation, so the agent's own
work dominates) on a fresh copy of the sample project, interleaved round-robin so drift
affects every scenario alike. Ratios are medians against the no-telemetry baseline.

    python benchmarks/run.py [--cycles 12] [--json]

Exit status 1 when a ratio exceeds its budget.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import tracemalloc
from pathlib import Path

from hephaestus.agent.build import build_runner
from hephaestus.config import Config
from hephaestus.sample import create_demo_repo

BUDGETS = {"file exporter": 1.5, "dead collector": 1.5, "blackhole collector": 1.5}
SYNTAX_ONLY = {"strategies": {"SYNTAX_ONLY": ["syntax"]}, "default_strategy": "SYNTAX_ONLY"}


def blackhole() -> tuple[socket.socket, str]:
    """A listening socket that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, f"http://127.0.0.1:{server.getsockname()[1]}"


def closed_port() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def scenarios(hole: str) -> dict[str, Config]:
    base = {
        "agent": {"history_window": 0},
        "validation": SYNTAX_ONLY,
        "logging": {"level": "error"},
    }
    return {
        "baseline (telemetry off)": Config().with_overrides(**base, telemetry={"enabled": False}),
        "file exporter": Config().with_overrides(**base),
        "dead collector": Config().with_overrides(
            **base, telemetry={"otlp_endpoint": closed_port(), "local_traces": False}
        ),
        "blackhole collector": Config().with_overrides(
            **base, telemetry={"otlp_endpoint": hole, "local_traces": False, "export_timeout": 10.0}
        ),
    }


def measure(configs: dict[str, Config], cycles: int, root: Path) -> dict[str, dict[str, float]]:
    runners = {
        name: build_runner(config, create_demo_repo(root / str(i)))
        for i, (name, config) in enumerate(configs.items())
    }
    durations: dict[str, list[float]] = {name: [] for name in runners}
    peaks: dict[str, list[int]] = {name: [] for name in runners}
    for _ in range(cycles):
        for name, runner in runners.items():
            tracemalloc.start()
            result = runner.run_cycle()
            peaks[name].append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            durations[name].append(result.duration)
    for runner in runners.values():
        runner.close()
    return {
        name: {
            "median_s": statistics.median(durations[name]),
            "peak_kib": statistics.median(peaks[name]) / 1024,
        }
        for name in runners
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    hole, hole_url = blackhole()
    root = Path(tempfile.mkdtemp(prefix="hephaestus-bench-"))
    try:
        results = measure(scenarios(hole_url), args.cycles, root)
    finally:
        hole.close()
        shutil.rmtree(root, ignore_errors=True)
    baseline = results["baseline (telemetry off)"]
    failed = False
    rows = []
    for name, values in results.items():
        ratio = values["median_s"] / baseline["median_s"]
        memory = values["peak_kib"] / baseline["peak_kib"]
        budget = BUDGETS.get(name)
        ok = budget is None or ratio <= budget
        failed |= not ok
        rows.append(
            {
                "scenario": name,
                "median_cycle_s": round(values["median_s"], 4),
                "time_ratio": round(ratio, 3),
                "peak_memory_ratio": round(memory, 3),
                "budget": budget,
                "ok": ok,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(
                f"{row['scenario']:<26} {row['median_cycle_s']:>8.4f}s  "
                f"time x{row['time_ratio']:<6} memory x{row['peak_memory_ratio']:<6} "
                f"budget {row['budget'] or '-':<4} {'ok' if row['ok'] else 'OVER BUDGET'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
