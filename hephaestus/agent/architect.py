"""The architect turns an objective into a JSON patch plan."""

from __future__ import annotations

from pathlib import Path

from hephaestus.agent.manifest import Manifest
from hephaestus.agent.models import Objective, PatchPlan
from hephaestus.agent.patches import (
    DEFAULT_MAX_FILE_BYTES,
    TextFile,
    confine_plan,
    parse_plan,
    safe_path,
)
from hephaestus.agent.prompts import ask_json, build_messages
from hephaestus.llm.base import Role
from hephaestus.llm.client import RoleModels

INSTRUCTIONS = """
You are the architect of Hephaestus. Write the smallest patch plan that achieves the
objective. Reply with a JSON object {"analysis": str, "patches_to_apply": [patch, ...]}.
Each patch has "file_path" (relative), "operation" (REPLACE, CREATE_FILE, INSERT,
DELETE_BLOCK) and: REPLACE -> "block_to_replace" + "content"; CREATE_FILE -> "content";
INSERT -> "line_number" (1-based, inserted before that line) + "content"; DELETE_BLOCK ->
"block_to_delete". Blocks are copied exactly from the file and must occur exactly once.
"""

_MAX_FILE_BYTES = 200_000


def plan_patch(
    models: RoleModels,
    objective: Objective,
    manifest: Manifest,
    root: Path,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> PatchPlan:
    """Ask the architect for a plan; the objective's file is shown in full.

    Every file is confined to ``root`` before it is read; the plan's paths are confined
    before anyone reads them (``unsafe_path``).
    """
    files = {}
    for path in _relevant_files(objective, manifest):
        full = safe_path(root, path)
        if full.is_file() and full.stat().st_size <= _MAX_FILE_BYTES:
            files[path] = TextFile.decode(full.read_bytes()).text
    payload = {
        "task": "patch_plan",
        "objective": objective.to_json(),
        "manifest": manifest.to_prompt(),
        "files": files,
    }
    answer = ask_json(models, Role.ARCHITECT, build_messages(INSTRUCTIONS, payload))
    plan = parse_plan(answer, max_file_bytes)
    confine_plan(plan, root)
    return plan


def _relevant_files(objective: Objective, manifest: Manifest) -> list[str]:
    if objective.file_path:
        return [objective.file_path]
    mentioned = [f.path for f in manifest.files if f.path in objective.text]
    return mentioned or list(manifest.sources)
