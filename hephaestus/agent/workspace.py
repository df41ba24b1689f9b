"""Isolated workspaces: a detached git worktree of HEAD, never the target tree.

Patches are applied and validated in the worktree; a validated change is committed there
and only then fast-forwarded into the target, so any other outcome leaves the target
byte-identical. An agent keeps one worktree (:class:`AgentWorkspace`) and resets it to
HEAD at the start of each cycle, which costs far less than adding and removing one a
cycle on a large repository; it is removed when the agent closes, and a worktree left by
a killed process is removed by recovery.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hephaestus.agent.gitrepo import GitError, GitRepo, changed_paths, git


class WorkspaceError(RuntimeError):
    """The workspace directory cannot be created or written; the message says where and why."""


@dataclass
class Workspace:
    """A detached worktree of ``base`` at ``root``."""

    repo: GitRepo
    root: Path
    base: str

    @classmethod
    def create(cls, repo: GitRepo, parent: Path, name: str) -> Workspace:
        """Add a detached worktree of HEAD at ``parent/name``."""
        base = repo.require_head()
        ensure_writable_dir(parent)
        root = parent / name
        git(["worktree", "add", "--detach", "--quiet", str(root), base], repo.root)
        return cls(repo=repo, root=root, base=base)

    def commit(self, paths: tuple[str, ...], message: str) -> str:
        """Commit ``paths`` in the worktree and return the new commit's id."""
        env = self.repo.identity_env()
        git(["add", "--", *paths], self.root, env=env)
        git(["commit", "--quiet", "--no-verify", "-m", message, "--", *paths], self.root, env=env)
        return git(["rev-parse", "HEAD"], self.root).stdout.strip()

    def changed_paths(self, paths: tuple[str, ...]) -> tuple[str, ...]:
        """Which of ``paths`` really differ from ``base`` (a patch can be a no-op)."""
        changed = set(changed_paths(self.root, paths))
        return tuple(p for p in paths if p in changed)

    def discard(self) -> None:
        """Remove the worktree and its administrative files; safe to call twice."""
        _remove_worktree(self.repo, self.root)
        git(["worktree", "prune"], self.repo.root, check=False)


@dataclass
class AgentWorkspace:
    """The one worktree an agent reuses: reset to HEAD when a cycle opens it."""

    repo: GitRepo
    parent: Path
    name: str = "agent"
    _current: Workspace | None = None

    def open(self) -> Workspace:
        """The worktree, detached at the target's HEAD with nothing else in it."""
        base = self.repo.require_head()
        ensure_writable_dir(self.parent)
        if self._current is not None:
            try:
                return self._reset(self._current.root, base)
            except (GitError, OSError):  # damaged (or removed) under us: start over
                self.close()
        self._current = Workspace.create(self.repo, self.parent, self.name)
        return self._current

    def _reset(self, root: Path, base: str) -> Workspace:
        # -f discards what the last cycle changed; clean -ffdx removes untracked and
        # ignored files (caches, build output) so no cycle sees another's leftovers
        git(["checkout", "--detach", "--quiet", "--force", base], root)
        git(["clean", "-ffdxq", "--exclude=.hephaestus"], root)
        self._current = Workspace(repo=self.repo, root=root, base=base)
        return self._current

    def close(self) -> None:
        """Remove the worktree; safe to call twice."""
        if self._current is not None:
            self._current.discard()
            self._current = None


def _remove_worktree(repo: GitRepo, root: Path) -> None:
    """Unregister the worktree at ``root`` (even locked or dirty) and delete what is left."""
    git(["worktree", "remove", "--force", "--force", str(root)], repo.root, check=False)
    shutil.rmtree(root, ignore_errors=True)


def ensure_writable_dir(parent: Path) -> None:
    """Create ``parent`` if needed and prove a file can be written there, or fail clearly.

    The probe file is unique and gone when this returns, so concurrent probes (a cycle
    starting while ``/api/ready`` checks) cannot disturb each other.
    """
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent, prefix=".probe-"):
            pass
    except OSError as exc:
        raise WorkspaceError(
            f"workspace directory {parent} is not writable ({exc.strerror}); fix its "
            f"permissions or set agent.workspace_dir to a writable directory"
        ) from None


def remove_stale_workspaces(repo: GitRepo, parent: Path) -> list[str]:
    """Delete worktrees left behind by a killed process; return their names."""
    removed: list[str] = []
    if parent.is_dir():
        for child in sorted(parent.iterdir()):
            if child.is_dir():
                _remove_worktree(repo, child)
                removed.append(child.name)
            elif child.suffix == ".json":  # a pytest run's report, left by a killed process
                child.unlink(missing_ok=True)
    with contextlib.suppress(GitError):  # prune only fails on a broken repository
        git(["worktree", "prune"], repo.root)
    return removed
