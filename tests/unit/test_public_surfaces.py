"""Every package names its public API in ``__all__``, and every name there resolves.

``agent``, ``llm`` and ``service`` load their names on first use: loading one of their
modules must not drag in the rest (the validation subprocess loads the agent's pytest
report plugin, and must not pay for the orchestrator, OpenTelemetry or the HTTP stack).
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "hephaestus.agent",
    "hephaestus.llm",
    "hephaestus.observability",
    "hephaestus.performance",
    "hephaestus.resilience",
    "hephaestus.service",
    "hephaestus.telemetry",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_package_lists_a_documented_public_surface_that_resolves(name):
    package = importlib.import_module(name)

    assert package.__doc__ and package.__doc__.strip()
    assert package.__all__ == sorted(set(package.__all__), key=package.__all__.index)
    missing = [n for n in package.__all__ if getattr(package, n, None) is None]
    assert missing == []
    assert all(not n.startswith("_") for n in package.__all__)


@pytest.mark.parametrize("name", ["hephaestus.agent", "hephaestus.llm", "hephaestus.service"])
def test_an_unknown_name_is_an_attribute_error_that_names_the_package(name):
    package = importlib.import_module(name)

    with pytest.raises(AttributeError, match=f"module '{name}' has no attribute 'nothing_here'"):
        package.nothing_here


def test_submodules_still_import_through_a_lazy_package():
    from hephaestus.agent import stages, validation

    assert callable(stages.scan_target) and callable(validation.run_pytest)


def test_loading_the_pytest_report_plugin_loads_only_the_names_it_shares_with_the_agent():
    code = (
        "import sys, hephaestus.agent.pytest_report; "
        "print(sorted(m for m in sys.modules if m.startswith(('hephaestus.', 'opentelemetry', "
        "'uvicorn', 'starlette'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert eval(loaded) == [
        "hephaestus._exports",
        "hephaestus.agent",
        "hephaestus.agent.pytest_report",
        "hephaestus.telemetry",
        "hephaestus.telemetry.conventions",
    ]
