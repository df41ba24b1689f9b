"""`make bench`'s scenarios still start: the in-process ones run with tiny counts.

No timing is asserted (a goal may be missed on a loaded machine: exit 1 is allowed); what
must hold is that each scenario runs to its report and measures every goal it names.
The CLI-driven scenarios use the `hephaestus` command line, which its own tests cover.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", [*SCENARIOS, "run", "http_burst", "e2e_local"])
def test_every_benchmark_module_imports(module: str):
    importlib.import_module(f"benchmarks.{module}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "goals"),
    [
        ("stage_helper", ["stage helper / raw OTel + prometheus-client calls"]),
        (
            "metrics_render",
            [
                "/metrics text p50, in-process, CPU, every series changed",
                "/metrics openmetrics p50, in-process, CPU, every series changed",
                "/metrics text p50, over HTTP",
                "/metrics openmetrics p50, over HTTP",
            ],
        ),
        (
            "startup",
            [
                "hephaestus --help starts and exits",
                "hephaestus config show starts and exits",
                "hephaestus history starts and exits",
            ],
        ),
    ],
)
def test_a_scenario_runs_to_its_report_with_tiny_counts(scenario, goals, tmp_path: Path):
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEPHAESTUS_", "OTEL_"))}
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{scenario}", "--json", str(out)],
        cwd=ROOT,
        env={**env, "BENCH_QUICK": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(out.read_text())
    assert [goal["name"] for goal in report["goals"]] == goals
    assert all(goal["measured"]["n"] >= 1 for goal in report["goals"])
