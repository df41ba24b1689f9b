"""The cycle: scan, objective, plan, review, strategy, apply, validate, commit, record.

:class:`CycleRunner` runs one cycle and :func:`build_runner` assembles one from config;
the stages (brain, architect, reviewer, maestro, workspace, validation, committer) are
modules of this package that only the runner calls. Names are imported on first use, so
loading one module (the validation subprocess loads the pytest report plugin) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hephaestus._exports import lazy_exports

if TYPE_CHECKING:
    from hephaestus.agent.brain import generate_next_objective
    from hephaestus.agent.build import build_runner
    from hephaestus.agent.gitrepo import GitError, GitRepo, NotAGitRepository, git
    from hephaestus.agent.memory import Memory, MemoryStoreError
    from hephaestus.agent.models import (
        CORRELATION_ID_RULE,
        CycleAborted,
        CycleError,
        CycleResult,
        Objective,
        Outcome,
        PatchPlan,
        Reason,
        Stage,
        check_correlation_id,
    )
    from hephaestus.agent.orchestrator import CycleRunner
    from hephaestus.agent.paths import memory_path, span_file_path
    from hephaestus.agent.recovery import AgentLocked
    from hephaestus.agent.workspace import WorkspaceError

__all__ = [
    "CORRELATION_ID_RULE",
    "AgentLocked",
    "CycleAborted",
    "CycleError",
    "CycleResult",
    "CycleRunner",
    "GitError",
    "GitRepo",
    "Memory",
    "MemoryStoreError",
    "NotAGitRepository",
    "Objective",
    "Outcome",
    "PatchPlan",
    "Reason",
    "Stage",
    "WorkspaceError",
    "build_runner",
    "check_correlation_id",
    "generate_next_objective",
    "git",
    "memory_path",
    "span_file_path",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "generate_next_objective": "brain",
        "build_runner": "build",
        "memory_path": "paths",
        "span_file_path": "paths",
        "GitError": "gitrepo",
        "GitRepo": "gitrepo",
        "NotAGitRepository": "gitrepo",
        "git": "gitrepo",
        "Memory": "memory",
        "MemoryStoreError": "memory",
        "CORRELATION_ID_RULE": "models",
        "CycleAborted": "models",
        "CycleError": "models",
        "CycleResult": "models",
        "Objective": "models",
        "Outcome": "models",
        "PatchPlan": "models",
        "Reason": "models",
        "Stage": "models",
        "check_correlation_id": "models",
        "CycleRunner": "orchestrator",
        "AgentLocked": "recovery",
        "WorkspaceError": "workspace",
    },
)
