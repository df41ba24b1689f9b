"""Bring a validated change into the target: checks, a worktree commit, a journaled fast-forward."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hephaestus.agent.commits import commit_message
from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.models import CycleError, Objective, Reason
from hephaestus.agent.recovery import CommitJournal
from hephaestus.agent.workspace import Workspace


def commit_change(
    repo: GitRepo,
    workspace: Workspace,
    paths: tuple[str, ...],
    objective: Objective,
    correlation_id: str,
    journal: CommitJournal,
    critical: Callable[[], contextlib.AbstractContextManager[None]],
) -> str:
    """Commit ``paths`` in the workspace and fast-forward the target to it; return the sha.

    Refuses (``patch_conflict``) when the target's HEAD moved or a touched file has local
    changes. The fast-forward runs inside ``critical()`` (shutdown waits for it) and under
    a journal entry, so a crash mid-way is undone or completed on the next start.
    """
    head = repo.head()
    if head != workspace.base:
        raise CycleError(
            Reason.PATCH_CONFLICT,
            f"the target's HEAD moved from {workspace.base[:12]} during the cycle",
        )
    dirty = repo.dirty_paths(paths)
    if dirty:
        raise CycleError(
            Reason.PATCH_CONFLICT,
            f"the target has local changes in {', '.join(dirty)}; not overwriting",
        )
    sha = workspace.commit(paths, commit_message(objective))
    with critical():
        journal.write(workspace.base, sha, paths, correlation_id)
        repo.fast_forward(sha)
        journal.clear()
    return sha
