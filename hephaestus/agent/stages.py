"""The stages of a cycle, one function each: each takes what it needs, returns what comes next.

``scan_target`` → ``choose_objective`` → ``architect.plan_patch`` → ``review`` →
``pick_strategy`` → ``apply`` → ``validate`` → ``commit``. A stage that decides the cycle
ends without a change raises :class:`~hephaestus.agent.models.CycleError` with its reason;
the orchestrator wraps each call in its span, deadline and timing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hephaestus.agent import validation
from hephaestus.agent.brain import generate_next_objective
from hephaestus.agent.committer import commit_change
from hephaestus.agent.gitrepo import GitRepo, RepositoryBusy
from hephaestus.agent.guard import GitFingerprint, file_digests, verify_unchanged
from hephaestus.agent.maestro import choose_strategy
from hephaestus.agent.manifest import Manifest, scan
from hephaestus.agent.memory import Memory, failure_counts
from hephaestus.agent.models import (
    CycleError,
    Objective,
    PatchPlan,
    Reason,
    StrategyChoice,
)
from hephaestus.agent.oracle import TestOracle
from hephaestus.agent.patches import apply_plan, safe_path
from hephaestus.agent.recovery import CommitJournal
from hephaestus.agent.reviewer import review_plan
from hephaestus.agent.workspace import Workspace
from hephaestus.config import AgentConfig, ValidationConfig
from hephaestus.llm.client import RoleModels


@dataclass(frozen=True)
class Change:
    """What a plan changed in the workspace: the paths, and the digests of what it wrote."""

    paths: tuple[str, ...]
    digests: dict[str, str]


def require_idle(repo: GitRepo) -> GitFingerprint:
    """Refuse a repository mid-merge/rebase; fingerprint its ``.git`` as the cycle starts."""
    try:
        repo.require_idle()
    except RepositoryBusy as exc:
        raise CycleError(Reason.PATCH_CONFLICT, str(exc), error_type="busy_repo") from None
    return GitFingerprint.take(repo)


def scan_target(workspace: Workspace, memory: Memory, agent: AgentConfig) -> Manifest:
    """The manifest of the workspace, with recent cycles and the objectives that keep failing."""
    recent = memory.recent(agent.history_window)
    history = tuple(
        {"objective": r["objective"], "outcome": r["outcome"], "reason": r["reason"]}
        for r in recent
        if r["objective"]
    )
    blocked = tuple(
        text
        for text, count in failure_counts(recent).items()
        if count >= agent.max_objective_failures
    )
    return scan(
        workspace.root,
        max_files=agent.max_manifest_files,
        max_source_bytes=agent.max_prompt_source_bytes,
        recent_cycles=history,
        blocked_objectives=blocked,
    )


def choose_objective(
    models: RoleModels,
    manifest: Manifest,
    text: str | None,
    previous: Objective | None,
    logger: logging.Logger | None = None,
) -> Objective:
    """The operator's objective when given, else the brain's (``no_objective`` when none)."""
    if text is not None:
        return Objective(text=" ".join(text.split()), source="operator")
    objective = generate_next_objective(models, manifest, previous, logger=logger)
    if objective is None:
        raise CycleError(Reason.NO_OBJECTIVE, "the brain found nothing worth changing")
    return objective


def confine(objective: Objective, workspace: Workspace) -> None:
    """Refuse (``unsafe_path``) an objective whose file lies outside the workspace."""
    if objective.file_path is not None:  # confined before the architect reads it
        safe_path(workspace.root, objective.file_path)


def review(
    models: RoleModels,
    objective: Objective,
    plan: PatchPlan,
    workspace: Workspace,
    agent: AgentConfig,
) -> None:
    """Rules, then the code reviewer; a rejection ends the cycle as ``review_rejected``."""
    verdict = review_plan(
        models,
        objective,
        plan,
        workspace.root,
        max_files=agent.max_patch_files,
        mode=agent.review_mode,
        allow_test_edits=agent.allow_test_edits,
    )
    if not verdict.approved:
        raise CycleError(Reason.REVIEW_REJECTED, f"review rejected the plan: {verdict.feedback}")


def pick_strategy(
    models: RoleModels,
    objective: Objective,
    plan: PatchPlan,
    manifest: Manifest,
    config: ValidationConfig,
) -> StrategyChoice:
    """The maestro's validation strategy (see :func:`require_steps`)."""
    return choose_strategy(
        models,
        objective,
        plan,
        manifest,
        config.strategies,
        config.default_strategy,
        config.require_tests,
    )


def require_steps(strategy: StrategyChoice) -> None:
    """A strategy without validation steps discards the plan (``discarded``)."""
    if not strategy.steps:
        raise CycleError(Reason.DISCARDED, f"strategy {strategy.name} discards the plan")


def apply(plan: PatchPlan, workspace: Workspace) -> Change:
    """Apply the plan in the workspace; a plan that changes nothing is ``no_change``."""
    touched = apply_plan(plan, workspace.root)
    changed = workspace.changed_paths(touched)
    if not changed:
        raise CycleError(Reason.NO_CHANGE, "the plan leaves every file as it was")
    return Change(changed, file_digests(workspace.root, changed))


def validate(
    strategy: StrategyChoice, workspace: Workspace, change: Change, oracle: TestOracle
) -> None:
    """Run the strategy's steps: syntax of every touched file, the project's tests."""
    for step in strategy.steps:
        if step == "syntax":
            validation.check_syntax(workspace.root, change.paths)
        elif step == "pytest":
            oracle.check(workspace)


def commit(
    repo: GitRepo,
    workspace: Workspace,
    change: Change,
    objective: Objective,
    correlation_id: str,
    *,
    git_state: GitFingerprint,
    journal: CommitJournal,
    critical: Callable[[], contextlib.AbstractContextManager[None]],
) -> str:
    """Check nothing validation ran touched ``.git`` or the change, then commit; the sha."""
    git_state.verify(repo)
    verify_unchanged(workspace.root, change.digests)
    return commit_change(
        repo, workspace, change.paths, objective, correlation_id, journal, critical
    )
