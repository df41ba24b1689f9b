"""The architect turns an objective into a JSON patch plan."""

from __future__ import annotations

from pathlib import Path

from hephaestus.agent.answers import PATCH_PLAN
from hephaestus.agent.budget import fit_messages
from hephaestus.agent.manifest import Manifest
from hephaestus.agent.models import Objective, PatchPlan
from hephaestus.agent.patches import (
    DEFAULT_MAX_FILE_BYTES,
    TextFile,
    confine_plan,
    plan_from_answer,
    safe_path,
)
from hephaestus.agent.prompts import ask_json
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

    Without a file named by the objective, the files its text mentions are shown, else the
    sources; a prompt over budget loses the least relevant of them (the largest first),
    never the objective's own file. Every file is confined to ``root`` before it is read,
    and the plan's paths before anyone reads them (``unsafe_path``).
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
    messages = fit_messages(
        models,
        Role.ARCHITECT,
        INSTRUCTIONS,
        payload,
        files_key="files",
        ranked=sorted(files, key=lambda p: (len(files[p]), p)),
        required=[p for p in files if p == objective.file_path],
    )
    answer = ask_json(models, Role.ARCHITECT, messages, PATCH_PLAN)
    plan = plan_from_answer(answer, max_file_bytes)
    confine_plan(plan, root)
    return plan


def _relevant_files(objective: Objective, manifest: Manifest) -> list[str]:
    if objective.file_path:
        return [objective.file_path]
    mentioned = [f.path for f in manifest.files if f.path in objective.text]
    return mentioned or list(manifest.sources)
