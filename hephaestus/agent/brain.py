"""The brain proposes the next objective: one small, checkable improvement."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from hephaestus.agent.answers import OBJECTIVE
from hephaestus.agent.budget import fit_messages
from hephaestus.agent.manifest import Manifest
from hephaestus.agent.models import CycleError, Objective, Reason
from hephaestus.agent.prompts import ask_json
from hephaestus.llm.base import Role
from hephaestus.llm.client import RoleModels
from hephaestus.telemetry import StructuredLogger

_LOG = logging.getLogger(__name__)

INSTRUCTIONS = """
You are the brain of Hephaestus, an agent that improves a Python repository one small,
verifiable change at a time. From the manifest, the sources (some files, in full) and the
recent cycles, propose ONE objective that a reviewer can check and that keeps every test
passing. Never propose an objective listed in blocked_objectives. Reply with a JSON object:
"objective" (one sentence, or null when nothing is worth doing), "kind", "file_path",
"symbol" and "rationale".
"""


def generate_next_objective(
    model_config: RoleModels,
    current_manifest: Manifest,
    current_objective: Objective | None = None,
    logger: logging.Logger | None = None,
) -> Objective | None:
    """Ask the brain for the next objective; ``None`` when it finds nothing worth doing.

    ``current_objective`` is the objective just worked on, so the brain moves on from it.
    Objectives that failed repeatedly (``current_manifest.blocked_objectives``) are refused
    with ``repeated_objective`` even if the model proposes them again.
    """
    log = StructuredLogger(logger or _LOG)
    payload: dict[str, Any] = {
        "task": "next_objective",
        "manifest": current_manifest.to_prompt(),
        "sources": current_manifest.sources,
        "recent_cycles": list(current_manifest.recent_cycles),
        "blocked_objectives": list(current_manifest.blocked_objectives),
        "current_objective": current_objective.to_json() if current_objective else None,
    }
    messages = fit_messages(
        model_config,
        Role.BRAIN,
        INSTRUCTIONS,
        payload,
        files_key="sources",
        ranked=rank_sources(current_manifest),
    )
    answer = ask_json(model_config, Role.BRAIN, messages, OBJECTIVE)
    text = answer.objective
    if text is None or not text.strip():
        log.info("brain found no objective", rationale=answer.rationale)
        return None
    objective = Objective(
        text=" ".join(text.split()),
        kind=answer.kind or "freeform",
        file_path=answer.file_path or None,
        symbol=answer.symbol or None,
        rationale=answer.rationale or "",
    )
    if objective.text in current_manifest.blocked_objectives:
        raise CycleError(
            Reason.REPEATED_OBJECTIVE, f"brain proposed a blocked objective again: {objective.text}"
        )
    log.info("objective chosen", objective=objective.text, kind=objective.kind)
    return objective


def rank_sources(manifest: Manifest) -> list[str]:
    """The sources from most to least relevant to the brain.

    Files the recent cycles did not work on come first, so a trimmed prompt still offers
    fresh ground; among equals, smaller files first, so more of them fit.
    """
    mentions = Counter(
        path
        for cycle in manifest.recent_cycles
        for path in manifest.sources
        if path in str(cycle.get("objective") or "")
    )
    return sorted(manifest.sources, key=lambda p: (mentions[p], len(manifest.sources[p]), p))
