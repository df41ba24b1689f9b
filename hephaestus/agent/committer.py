"""Bring a validated change into the target: checks, a worktree commit, a journaled fast-forward."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hephaestus.agent.commit_message import commit_message
from hephaestus.agent.gitrepo import GitError, GitLockBusy, GitRepo
from hephaestus.agent.models import CycleError, Objective, Reason
from hephaestus.agent.recovery import CommitJournal, ref_locks
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

    Refuses (``patch_conflict``) when the target's HEAD moved, a touched file has local
    changes, or an earlier fast-forward's journal is still pending. The fast-forward runs
    inside ``critical()`` (shutdown waits for it) and under a journal entry, so a crash
    mid-way is undone or completed on the next start; when it fails, what it wrote is
    rolled back at once and the journal cleared.
    """
    pending = journal.read()
    if pending is not None:
        raise CycleError(
            Reason.PATCH_CONFLICT,
            f"an unfinished fast-forward ({journal.path.name} of cycle "
            f"{(pending or {}).get('correlation_id', '?')}) is pending; restart the agent so "
            f"recovery can finish it",
            error_type="journal_pending",
        )
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
        journal.write(workspace.base, sha, paths, correlation_id, ref_locks(repo, repo.branch()))
        try:
            repo.fast_forward(sha)
        except GitError as exc:
            if repo.head() != sha:  # it did not land: undo what it wrote, then fail
                failure = _roll_back(repo, workspace.base, sha, paths, exc)
                journal.clear()
                raise failure from None
        journal.clear()
    return sha


def _roll_back(
    repo: GitRepo, base: str, sha: str, paths: tuple[str, ...], exc: GitError
) -> CycleError:
    """Undo what a failed fast-forward wrote (never the operator's edits); the error to raise.

    Raises at once, keeping the journal for recovery, when the rollback itself fails.
    """
    try:
        repo.rollback_paths(base, sha, paths)
    except GitError as again:
        raise CycleError(
            Reason.PATCH_CONFLICT,
            f"the fast-forward into the target failed ({exc}) and could not be rolled back "
            f"({again}); the commit journal is kept for recovery at the next start",
            error_type="fast_forward_failed",
        ) from None
    return CycleError(
        Reason.PATCH_CONFLICT,
        f"the fast-forward into the target failed and was rolled back: {exc}",
        error_type="index_locked" if isinstance(exc, GitLockBusy) else "fast_forward_failed",
    )
