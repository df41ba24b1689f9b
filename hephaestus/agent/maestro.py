"""The maestro picks how to validate a plan, from the configured strategies only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hephaestus.agent.answers import STRATEGY
from hephaestus.agent.budget import fit_messages
from hephaestus.agent.manifest import Manifest
from hephaestus.agent.models import Objective, PatchPlan, StrategyChoice
from hephaestus.agent.prompts import ask_json
from hephaestus.llm.base import Role
from hephaestus.llm.client import RoleModels

INSTRUCTIONS = """
You are the maestro of Hephaestus. Pick the validation strategy for the approved plan from
"strategies" (name -> ordered steps; an empty list discards the plan). Prefer running the
tests when the project has them. Reply with a JSON object {"strategy": name, "rationale": str}.
"""


def choose_strategy(
    models: RoleModels,
    objective: Objective,
    plan: PatchPlan,
    manifest: Manifest,
    strategies: Mapping[str, Sequence[str]],
    default: str,
    require_tests: bool = True,
) -> StrategyChoice:
    """Ask the maestro; a strategy that is not configured fails the cycle with ``invalid_plan``.

    The schema lists the configured strategies, so a model under structured outputs cannot
    name another. With ``require_tests``, a Python change in a project that has tests is
    validated by them whatever the maestro picked (short of discarding the plan).
    """
    payload = {
        "task": "strategy",
        "objective": objective.to_json(),
        "files": list(plan.files),
        "operations": [p.operation.value for p in plan.patches],
        "has_tests": manifest.has_tests,
        "default_strategy": default,
        "strategies": {name: list(steps) for name, steps in strategies.items()},
    }
    messages = fit_messages(models, Role.MAESTRO, INSTRUCTIONS, payload)
    schema = STRATEGY.with_choices(strategy=tuple(strategies))
    answer = ask_json(models, Role.MAESTRO, messages, schema)
    choice = StrategyChoice(
        name=answer.strategy,
        steps=tuple(strategies[answer.strategy]),
        rationale=answer.rationale or "",
    )
    python = any(path.endswith(".py") for path in plan.files)
    if require_tests and manifest.has_tests and python and choice.steps:
        return _with_tests(choice, strategies, default)
    return choice


def _with_tests(
    choice: StrategyChoice, strategies: Mapping[str, Sequence[str]], default: str
) -> StrategyChoice:
    """``choice`` if it runs pytest; else the default (or first) strategy that does."""
    if "pytest" in choice.steps:
        return choice
    names = [default, *strategies]
    name = next((n for n in names if "pytest" in strategies[n]), None)
    steps = tuple(strategies[name]) if name else (*choice.steps, "pytest")
    return StrategyChoice(
        name=name or f"{choice.name}+pytest",
        steps=steps,
        rationale=f"the maestro chose {choice.name}; a Python change in a project with tests "
        "is validated by its tests (validation.require_tests)",
    )
