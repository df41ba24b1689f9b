"""The target git repository, driven through the real ``git`` command line.

Every command runs with hooks, fsmonitor and commit signing switched off and with literal
pathspecs, so neither the repository's configuration nor a file name a model chose can make
git run a program or match more than the one file it names. A command that finds another
git process's lock (an IDE's ``git status`` loop) is retried briefly before it fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

AGENT_DIR = ".hephaestus"
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "Hephaestus",
    "GIT_AUTHOR_EMAIL": "hephaestus@localhost",
    "GIT_COMMITTER_NAME": "Hephaestus",
    "GIT_COMMITTER_EMAIL": "hephaestus@localhost",
}
# no hooks, no fsmonitor daemon, no signing program: git runs nothing the repository names
_SAFE_CONFIG = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "commit.gpgSign=false",
)
_SAFE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
    "GIT_LITERAL_PATHSPECS": "1",  # a path is a file name, never a pattern
    "GIT_OPTIONAL_LOCKS": "0",  # `git status` does not take index.lock just to refresh it
}
# the operator's identity and config files stay; variables that redirect git to another
# repository, inject config or name a program (GIT_SSH_COMMAND, GIT_EXTERNAL_DIFF...) do not
_KEPT_GIT_ENV = re.compile(
    r"^GIT_((AUTHOR|COMMITTER)_(NAME|EMAIL|DATE)|CONFIG_(GLOBAL|SYSTEM|NOSYSTEM)"
    r"|CEILING_DIRECTORIES)$"
)
_LOCKED = re.compile(r"Unable to create '([^']+\.lock)': File exists")
LOCK_WAIT = 3.0  # seconds a command may wait for another git process's lock
_sleep = time.sleep
# what a repository in the middle of an operation has in its git dir, and how to end it
_IDENTITY_KEYS = r"^user\.(name|email)$"
_IN_PROGRESS = (
    ("MERGE_HEAD", "a merge", "git merge --continue or git merge --abort"),
    ("rebase-merge", "a rebase", "git rebase --continue or git rebase --abort"),
    ("rebase-apply", "a rebase or am", "git rebase --continue/--abort or git am --abort"),
    ("CHERRY_PICK_HEAD", "a cherry-pick", "git cherry-pick --continue or --abort"),
    ("REVERT_HEAD", "a revert", "git revert --continue or --abort"),
    ("BISECT_LOG", "a bisect", "git bisect reset"),
)


class GitError(RuntimeError):
    """A git command failed; the message carries git's own words."""


class GitLockBusy(GitError):
    """Another git process held a lock of the repository for longer than :data:`LOCK_WAIT`."""


class NotAGitRepository(GitError):
    """The project path is not inside a git work tree."""


class RepositoryBusy(GitError):
    """The repository is in the middle of a merge, rebase, cherry-pick, revert or bisect."""


def git_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a git command: ours minus git settings that run programs, + ``env``."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("GIT_") or _KEPT_GIT_ENV.match(k)
    }
    return {**inherited, **(env or {}), **_SAFE_ENV}


def git(
    args: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` in ``cwd`` and return the completed process (text mode).

    A command that fails on another process's ``*.lock`` is retried for up to
    :data:`LOCK_WAIT` seconds, then raises :class:`GitLockBusy` (even with ``check=False``).
    """
    full_env = git_env(env)
    waited, pause = 0.0, 0.05
    while True:
        proc = subprocess.run(
            ["git", *_SAFE_CONFIG, *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        locked = _LOCKED.search(proc.stderr) if proc.returncode != 0 else None
        if locked is None:
            break
        if waited >= LOCK_WAIT:
            raise GitLockBusy(
                f"git {' '.join(args)} in {cwd}: another git process held {locked.group(1)} "
                f"for over {LOCK_WAIT:g}s (an editor or a git command running beside the agent)"
            )
        _sleep(pause)
        waited, pause = waited + pause, min(pause * 2, 0.5)
    if check and proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


_STATUS_Z = ("status", "--porcelain", "-z", "--no-renames", "--untracked-files=all")


def changed_paths(root: Path, paths: Sequence[str]) -> list[str]:
    """Which of ``paths`` differ from HEAD in ``root``'s work tree or index, or are untracked.

    Paths come back as git spells them (``git status --porcelain -z --no-renames``).
    """
    if not paths:
        return []
    porcelain_z = git([*_STATUS_Z, "--", *paths], root).stdout
    return [entry[3:] for entry in porcelain_z.split("\0") if len(entry) > 3]


class GitRepo:
    """A work tree the agent improves; every change to it goes through :meth:`fast_forward`.

    Where the work tree keeps its git files does not change while the agent runs, so the
    paths git names for them are asked once and remembered: a cycle asks for them often.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._git_paths: dict[tuple[str, ...], Path] = {}

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

    def git_dir(self) -> Path:
        """The (common) git directory: config, hooks, refs, objects."""
        return self._rev_parse_path("--git-common-dir")

    def git_path(self, name: str) -> Path:
        """The absolute path git uses for ``name`` (``index.lock``, ``MERGE_HEAD``...)."""
        return self._rev_parse_path("--git-path", name)

    def _rev_parse_path(self, *query: str) -> Path:
        found = self._git_paths.get(query)
        if found is None:
            out = git(["rev-parse", "--path-format=absolute", *query], self.root)
            found = self._git_paths[query] = Path(out.stdout.strip())
        return found

    def branch(self) -> str:
        """The ref HEAD points to (``refs/heads/main``), or ``""`` when it is detached."""
        return git(["symbolic-ref", "-q", "HEAD"], self.root, check=False).stdout.strip()

    def operation_in_progress(self) -> str | None:
        """What unfinished git operation the repository is in, with how to end it; or ``None``."""
        git_dir = self._rev_parse_path("--absolute-git-dir")
        for marker, what, fix in _IN_PROGRESS:
            if (git_dir / marker).exists():
                return f"{what} ({git_dir / marker} exists); finish it with {fix}"
        return None

    def require_idle(self) -> None:
        """Raise :class:`RepositoryBusy` when a merge, rebase... is unfinished."""
        busy = self.operation_in_progress()
        if busy is not None:
            raise RepositoryBusy(f"{self.root} is in the middle of {busy}, then start again")

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
        found = git(["config", "--get-regexp", _IDENTITY_KEYS], self.root, check=False).stdout
        values = dict(line.partition(" ")[::2] for line in found.splitlines())
        complete = values.get("user.name", "").strip() and values.get("user.email", "").strip()
        return {} if complete else dict(_FALLBACK_IDENTITY)

    def dirty_paths(self, paths: Sequence[str]) -> list[str]:
        """Which of ``paths`` differ from HEAD in the work tree or index (or exist untracked)."""
        return changed_paths(self.root, paths)

    def fast_forward(self, commit: str) -> None:
        """Move HEAD (and the touched files) to ``commit``, a child of HEAD."""
        git(["merge", "--ff-only", "--no-edit", "--quiet", commit], self.root)

    def blob(self, rev: str, path: str) -> str | None:
        """The blob id of ``path`` in ``rev``, or ``None`` when ``rev`` has no such file."""
        out = git(["rev-parse", "--verify", "-q", f"{rev}:{path}"], self.root, check=False)
        return out.stdout.strip() or None

    def worktree_blob(self, path: str) -> str | None:
        """The blob id the work-tree file would get if added now, or ``None`` if it is absent."""
        if not (self.root / path).is_file():
            return None
        return git(["hash-object", "--", path], self.root).stdout.strip()

    def rollback_paths(self, base: str, commit: str, paths: Sequence[str]) -> list[str]:
        """Put back to ``base`` each of ``paths`` that holds ``commit``'s content; return them.

        A file with any other content was changed by someone else after the agent wrote it
        (or never written by it): it is left exactly as it is.
        """
        restored = []
        for path in paths:
            ours, theirs = self.blob(commit, path), self.blob(base, path)
            if ours is None or ours == theirs:
                continue
            staged = git(["ls-files", "-s", "--", path], self.root).stdout.split()
            if len(staged) > 1 and staged[1] == ours:  # the index holds the agent's version
                if theirs is None:
                    git(["rm", "-q", "--cached", "--", path], self.root)
                else:
                    git(["reset", "-q", base, "--", path], self.root)
            if self.worktree_blob(path) != ours:
                continue
            if theirs is None:
                (self.root / path).unlink()
            else:
                git(["checkout", base, "--", path], self.root)
            restored.append(path)
        return restored
