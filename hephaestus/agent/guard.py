"""What validation must leave alone: the target's ``.git`` and the files the plan wrote.

The tests of a patched workspace run code a model wrote. Whatever the sandbox, before the
agent commits it checks that the target's git configuration, hooks and refs (other than the
branch it fast-forwards) are as they were when the cycle started, and that every file it is
about to commit still holds the bytes the patch wrote: what passed validation is what lands.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from hephaestus.agent.gitrepo import GitRepo, git
from hephaestus.agent.models import CycleError, Reason

_WATCHED = ("config", "config.worktree", "hooks", "info")
_MAX_WATCHED_FILES = 2_000


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _watched_files(git_dir: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for name in _WATCHED:
        top = git_dir / name
        found = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for path in found[:_MAX_WATCHED_FILES]:
            if not path.is_dir():
                key = path.relative_to(git_dir).as_posix()
                files[key] = "symlink" if path.is_symlink() else _digest(path)
    return files


def _refs(repo: GitRepo) -> dict[str, str]:
    """Every ref but the branch HEAD names; which branch that is, under ``HEAD``."""
    out = git(["for-each-ref", "--format=%(HEAD) %(refname) %(objectname)"], repo.root).stdout
    refs, branch = {}, ""
    for line in out.splitlines():
        current, name, value = line[:1], *line[2:].partition(" ")[::2]
        if current == "*":
            branch = name
        elif value:
            refs[name] = value
    refs["HEAD"] = branch or "(detached)"
    return refs


def _differing(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@dataclass(frozen=True)
class GitFingerprint:
    """The target's ``.git`` as the cycle found it: watched files and refs."""

    files: dict[str, str]
    refs: dict[str, str]

    @classmethod
    def take(cls, repo: GitRepo) -> GitFingerprint:
        """Fingerprint ``repo`` now (the branch HEAD names is left out of the refs)."""
        return cls(_watched_files(repo.git_dir()), _refs(repo))

    def changes(self, repo: GitRepo) -> list[str]:
        """What differs in ``repo`` now: ``.git/<file>`` and ref names, sorted."""
        now = GitFingerprint.take(repo)
        files = _differing(self.files, now.files)
        return [f".git/{name}" for name in files] + _differing(self.refs, now.refs)

    def verify(self, repo: GitRepo) -> None:
        """Fail with ``unsafe_path`` when the target's ``.git`` changed since :meth:`take`."""
        changed = self.changes(repo)
        if changed:
            more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            shown = ", ".join(changed[:5]) + more
            raise CycleError(
                Reason.UNSAFE_PATH,
                f"the target's .git changed during the cycle ({shown}); nothing was committed "
                f"- inspect those before the next run",
                error_type="git_dir_changed",
            )


def file_digests(root: Path, paths: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of each of ``paths`` under ``root`` (``missing`` for an absent file)."""
    return {p: _digest(root / p) if (root / p).is_file() else "missing" for p in paths}


def verify_unchanged(root: Path, expected: dict[str, str]) -> None:
    """Fail with ``unsafe_path`` when validation changed a file the patch wrote."""
    changed = _differing(expected, file_digests(root, tuple(expected)))
    if changed:
        raise CycleError(
            Reason.UNSAFE_PATH,
            f"validation changed {', '.join(changed)} after the patch was applied; "
            f"what passed the tests is not what would be committed",
            error_type="validated_file_changed",
        )
