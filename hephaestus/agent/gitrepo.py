"""The target git repository, driven through the real ``git`` command line."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

AGENT_DIR = ".hephaestus"
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "Hephaestus",
    "GIT_AUTHOR_EMAIL": "hephaestus@localhost",
    "GIT_COMMITTER_NAME": "Hephaestus",
    "GIT_COMMITTER_EMAIL": "hephaestus@localhost",
}


class GitError(RuntimeError):
    """A git command failed; the message carries git's own words."""


class NotAGitRepository(GitError):
    """The project path is not inside a git work tree."""


def git(
    args: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` in ``cwd`` and return the completed process (text mode)."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


class GitRepo:
    """A work tree the agent improves; every change to it goes through :meth:`fast_forward`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def open(cls, path: Path) -> GitRepo:
        """Open the work tree containing ``path``, or raise :class:`NotAGitRepository`."""
        if not path.is_dir():
            raise NotAGitRepository(
                f"{path} is not a directory; pass --project with a git repository"
            )
        proc = git(["rev-parse", "--show-toplevel"], path, check=False)
        if proc.returncode != 0:
            raise NotAGitRepository(
                f"{path} is not a git repository; run `git init` and commit first, or pass "
                f"--project with a git repository"
            )
        return cls(Path(proc.stdout.strip()))

    @property
    def agent_dir(self) -> Path:
        """``.hephaestus/`` inside the repo: memory, workspaces, journals, local traces."""
        return self.root / AGENT_DIR

    def head(self) -> str | None:
        """The commit HEAD points to, or ``None`` in a repository with no commits."""
        proc = git(["rev-parse", "--verify", "-q", "HEAD^{commit}"], self.root, check=False)
        return proc.stdout.strip() or None

    def require_head(self) -> str:
        """HEAD's commit, or a :class:`GitError` that says to make a first commit."""
        head = self.head()
        if head is None:
            raise GitError(f"{self.root} has no commits yet; make an initial commit first")
        return head

    def status(self) -> str:
        """``git status --porcelain`` including untracked files."""
        return git(["status", "--porcelain", "--untracked-files=all"], self.root).stdout

    def ignore_agent_dir(self) -> None:
        """Keep ``.hephaestus/`` out of git status via ``.git/info/exclude``.

        No tracked file changes: the exclude file lives inside ``.git/``.
        """
        exclude = Path(git(["rev-parse", "--git-path", "info/exclude"], self.root).stdout.strip())
        exclude = exclude if exclude.is_absolute() else self.root / exclude
        line = f"/{AGENT_DIR}/"
        text = exclude.read_text() if exclude.exists() else ""
        if line not in text.splitlines():
            exclude.parent.mkdir(parents=True, exist_ok=True)
            exclude.write_text(
                text + ("" if not text or text.endswith("\n") else "\n") + line + "\n"
            )

    def identity_env(self) -> dict[str, str]:
        """A fallback author/committer when the repo and user have none configured."""
        name = git(["config", "user.name"], self.root, check=False).stdout.strip()
        email = git(["config", "user.email"], self.root, check=False).stdout.strip()
        return {} if name and email else dict(_FALLBACK_IDENTITY)

    def dirty_paths(self, paths: Sequence[str]) -> list[str]:
        """Which of ``paths`` differ from HEAD in the work tree or index (or exist untracked)."""
        if not paths:
            return []
        out = git(
            ["status", "--porcelain", "--untracked-files=all", "--", *paths], self.root
        ).stdout
        return [line[3:] for line in out.splitlines() if line.strip()]

    def fast_forward(self, commit: str) -> None:
        """Move HEAD (and the touched files) to ``commit``, a child of HEAD."""
        git(["merge", "--ff-only", "--no-edit", "--quiet", commit], self.root)

    def restore_paths(self, base: str, paths: Sequence[str]) -> None:
        """Put ``paths`` back as they are in ``base``; delete those ``base`` does not have."""
        tracked = set(
            git(["ls-tree", "-r", "--name-only", base, "--", *paths], self.root).stdout.splitlines()
        )
        if tracked:
            git(["checkout", base, "--", *sorted(tracked)], self.root)
            git(["reset", "-q", base, "--", *sorted(tracked)], self.root)
        for path in set(paths) - tracked:
            git(["rm", "-q", "--cached", "--ignore-unmatch", "--", path], self.root)
            (self.root / path).unlink(missing_ok=True)

    def commit_message(self, commit: str) -> str:
        """The full message of ``commit``."""
        return git(["log", "-1", "--format=%B", commit], self.root).stdout
