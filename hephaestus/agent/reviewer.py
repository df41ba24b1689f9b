"""The code reviewer: rules first, then the code_reviewer model (always for risky plans)."""

from __future__ import annotations

from pathlib import Path

from hephaestus.agent.answers import REVIEW
from hephaestus.agent.budget import fit_messages
from hephaestus.agent.manifest import is_test_file
from hephaestus.agent.models import Objective, Operation, PatchPlan, Review
from hephaestus.agent.patches import TextFile, confine_plan, safe_path
from hephaestus.agent.prompts import ask_json
from hephaestus.agent.suite import is_about_tests, suite_files
from hephaestus.llm.base import Role
from hephaestus.llm.client import RoleModels

INSTRUCTIONS = """
You are the code reviewer of Hephaestus. Approve the patch plan only if it achieves the
objective, is minimal, keeps behaviour and tests passing, and every block occurs exactly once
in its file. Reply with a JSON object {"approved": true|false, "feedback": str}.
"""

_RISKY_OPERATIONS = (Operation.DELETE_BLOCK, Operation.CREATE_FILE)
_MAX_CONTENT_LINES = 200


def rule_verdict(
    plan: PatchPlan,
    max_files: int,
    objective: Objective | None = None,
    root: Path | None = None,
    allow_test_edits: bool = False,
) -> Review | None:
    """A rejection the rules alone decide, or ``None`` to go on to the model.

    A plan that edits the test suite or pytest's configuration is rejected unless test
    edits are allowed and the objective is about tests.
    """
    if len(plan.files) > max_files:
        return Review(
            False,
            f"the plan touches {len(plan.files)} files; at most {max_files} "
            "are allowed (agent.max_patch_files)",
            by_rule=True,
        )
    if root is not None:
        suite = suite_files(plan, root)
        tests_allowed = allow_test_edits and objective is not None and is_about_tests(objective)
        if suite and not tests_allowed:
            return Review(
                False,
                f"the plan edits the test suite ({', '.join(suite)}); the tests decide what "
                "is committed, so a plan may not change them (agent.allow_test_edits, "
                "for objectives about tests)",
                by_rule=True,
            )
    for patch in plan.patches:
        if patch.operation is Operation.DELETE_BLOCK and is_test_file(patch.file_path):
            return Review(False, f"the plan deletes test code in {patch.file_path}", by_rule=True)
    return None


def is_risky(plan: PatchPlan) -> bool:
    """Risky plans always go to the model: deletions, new files, tests, big or non-Python edits."""
    return any(
        p.operation in _RISKY_OPERATIONS
        or is_test_file(p.file_path)
        or not p.file_path.endswith(".py")
        or p.content.count("\n") > _MAX_CONTENT_LINES
        for p in plan.patches
    )


def review_plan(
    models: RoleModels,
    objective: Objective,
    plan: PatchPlan,
    root: Path,
    *,
    max_files: int,
    mode: str,
    allow_test_edits: bool = False,
) -> Review:
    """Review ``plan``: rule rejections first, then the model (unless mode and risk allow).

    Every path is confined to ``root`` before any file is read for the model.
    """
    confine_plan(plan, root)
    verdict = rule_verdict(plan, max_files, objective, root, allow_test_edits)
    if verdict is not None:
        return verdict
    if mode == "risky_only" and not is_risky(plan):
        return Review(True, "approved by rules: small, non-risky change", by_rule=True)
    files = {}
    for path in plan.files:
        full = safe_path(root, path)
        if full.is_file():
            files[path] = TextFile.decode(full.read_bytes()).text
    payload = {
        "task": "review",
        "objective": objective.to_json(),
        "plan": _plan_json(plan),
        "files": files,
    }
    # every file the plan touches is needed to judge it: none is trimmed
    messages = fit_messages(
        models, Role.CODE_REVIEWER, INSTRUCTIONS, payload, files_key="files", required=list(files)
    )
    answer = ask_json(models, Role.CODE_REVIEWER, messages, REVIEW)
    return Review(answer.approved, answer.feedback)


def _plan_json(plan: PatchPlan) -> dict[str, object]:
    patches = []
    for p in plan.patches:
        item: dict[str, object] = {
            "file_path": p.file_path,
            "operation": p.operation.value,
            "content": p.content,
        }
        if p.operation is Operation.REPLACE:
            item["block_to_replace"] = p.block
        elif p.operation is Operation.DELETE_BLOCK:
            item["block_to_delete"] = p.block
        elif p.operation is Operation.INSERT:
            item["line_number"] = p.line_number
        patches.append(item)
    return {"analysis": plan.analysis, "patches_to_apply": patches}
