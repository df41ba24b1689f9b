"""The read-only commands start without the libraries only the agent and the service need.

Each command runs in a fresh interpreter, which then lists the top-level packages it
imported. ``run``/``serve`` need OpenTelemetry, prometheus-client, httpx, uvicorn; ``--help``,
``config show`` and ``history`` must not pay for them at every start, nor for stamina (only
retries need it), nor for rich where they print plain text.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from factories import clean_env, make_target_repo

from hephaestus.agent.memory import Memory
from hephaestus.agent.models import CycleResult, Reason

HEAVY = {
    "opentelemetry",
    "prometheus_client",
    "httpx",
    "starlette",
    "uvicorn",
    "pytest",
    "stamina",
}
PROBE = """
import json, sys
from hephaestus.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
sys.stdout.flush()
sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")
raise SystemExit(code)
"""


def modules_after(code: str, *args: str, cwd: Path) -> set[str]:
    """Every module a fresh interpreter has imported once ``code`` ran (it prints them)."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def modules_loaded_by(*args: str, cwd: Path) -> set[str]:
    """Every module the command ``hephaestus *args`` imported."""
    return modules_after(PROBE, *args, cwd=cwd)


def loaded_by(*args: str, cwd: Path) -> set[str]:
    """The top-level packages a command imported."""
    return {module.split(".")[0] for module in modules_loaded_by(*args, cwd=cwd)}


@pytest.mark.parametrize(
    "args",
    [("--help",), ("run", "--help"), ("config", "show"), ("config", "show", "--json")],
)
def test_help_and_config_show_import_none_of_the_heavy_libraries(args, tmp_path):
    loaded = loaded_by(*args, cwd=tmp_path)

    assert "hephaestus" in loaded
    assert loaded & HEAVY == set()
    assert "rich" not in loaded


def test_history_imports_none_of_the_heavy_libraries(tmp_path):
    repo = make_target_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    result = CycleResult(correlation_id=str(uuid.uuid4()), cycle_number=1, provider="offline")
    result.end(Reason.NO_OBJECTIVE)
    memory = Memory(repo / ".hephaestus" / "memory.db")
    memory.start_cycle(result)
    memory.finish_cycle(result)
    memory.close()

    modules = modules_loaded_by("history", "--project", str(repo), cwd=tmp_path)

    assert "hephaestus.display" in modules  # it printed the table of the recorded cycle
    assert {module.split(".")[0] for module in modules} & HEAVY == set()
    # nor the agent's own machinery: reading memory needs none of it
    for package in ("hephaestus.resilience", "hephaestus.telemetry", "hephaestus.performance"):
        assert package not in modules


def test_the_probe_sees_a_heavy_import_when_a_command_makes_one(tmp_path):
    # the same probe, on a command that needs httpx: the check above can fail
    loaded = loaded_by("status", "--help", cwd=tmp_path)
    assert "hephaestus" in loaded
    assert "httpx" not in loaded  # --help of a subcommand still imports nothing heavy
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "status", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(),
        timeout=120,
    )
    assert "httpx" in json.loads(done.stderr.strip().splitlines()[-1])


def test_the_agent_and_the_service_do_not_import_pytest(tmp_path):
    # pytest runs in the validation subprocess; importing it here costs every start ~0.2 s
    code = "import json, sys, hephaestus.agent.orchestrator, hephaestus.service.loop\n"
    code += 'sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")'

    modules = modules_after(code, cwd=tmp_path)

    assert "hephaestus.agent.validation" in modules
    assert {module.split(".")[0] for module in modules} & {"pytest", "_pytest"} == set()
