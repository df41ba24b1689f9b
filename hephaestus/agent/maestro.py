"""The maestro picks how to validate a plan, from the configured strategies only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hephaestus.agent.manifest import Manifest
from hephaestus.agent.models import CycleError, Objective, PatchPlan, Reason, StrategyChoice
from hephaestus.agent.prompts import ask_json, build_messages
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
) -> StrategyChoice:
    """Ask the maestro; a strategy that is not configured fails the cycle with ``invalid_plan``."""
    payload = {
        "task": "strategy",
        "objective": objective.to_json(),
        "files": list(plan.files),
        "operations": [p.operation.value for p in plan.patches],
        "has_tests": manifest.has_tests,
        "default_strategy": default,
        "strategies": {name: list(steps) for name, steps in strategies.items()},
    }
    answer = ask_json(models, Role.MAESTRO, build_messages(INSTRUCTIONS, payload))
    name = answer.get("strategy")
    if not isinstance(name, str) or name not in strategies:
        raise CycleError(
            Reason.INVALID_PLAN,
            f"maestro chose {name!r}, which is not a configured strategy ({', '.join(strategies)})",
        )
    return StrategyChoice(
        name=name, steps=tuple(strategies[name]), rationale=str(answer.get("rationale") or "")
    )
