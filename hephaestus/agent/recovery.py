"""Crash safety: the one-agent-per-repo lock, the commit journal, and recovery on start.

After ``kill -9`` at any point of a cycle, :func:`recover` puts the target back exactly as
before that cycle (or with the complete commit), kills an orphaned pytest, removes stale
workspaces and marks the interrupted cycle ``aborted``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.memory import Memory
from hephaestus.agent.workspace import ensure_writable_dir, remove_stale_workspaces

_LOG = logging.getLogger("hephaestus.recovery")
JOURNAL_NAME = "commit-journal.json"
PYTEST_PID_SUFFIX = ".pytest.pid"


class AgentLocked(RuntimeError):
    """Another Hephaestus process is already running cycles on this repository."""


class AgentLock:
    """An exclusive ``flock`` on ``.hephaestus/agent.lock`` for the life of a runner."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise AgentLocked(
                f"another hephaestus process (pid {holder}) is running cycles on "
                f"{path.parent.parent}; stop it or wait for it to finish"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it)."""
        with contextlib.suppress(OSError):
            os.close(self._fd)


def ref_locks(repo: GitRepo, branch: str) -> list[Path]:
    """The lock files a fast-forward of ``branch`` takes (index, HEAD, the branch, packed refs)."""
    names = ["index.lock", "HEAD.lock", "packed-refs.lock"]
    if branch:
        names.append(f"{branch}.lock")
    return [repo.git_path(name) for name in names]


@dataclass
class CommitJournal:
    """What a fast-forward is about to change, written before it starts."""

    path: Path

    def write(
        self,
        base: str,
        commit: str,
        paths: tuple[str, ...],
        correlation_id: str,
        locks: list[Path] | None = None,
    ) -> None:
        """Durably record the intended fast-forward (write, fsync, rename).

        ``locks`` are the lock files the fast-forward may take; those that already exist
        are recorded as someone else's, so recovery never removes them.
        """
        tmp = self.path.with_suffix(".tmp")
        data = json.dumps(
            {
                "base": base,
                "commit": commit,
                "paths": list(paths),
                "correlation_id": correlation_id,
                "locks": [str(lock) for lock in locks or []],
                "foreign_locks": [str(lock) for lock in locks or [] if lock.exists()],
            }
        )
        with tmp.open("w") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)

    def clear(self) -> None:
        """The fast-forward finished (or never started)."""
        self.path.unlink(missing_ok=True)

    def read(self) -> dict | None:
        """The pending entry, if a process died during a fast-forward."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:  # torn before the rename: nothing was changed yet
            return {}

    def stale_locks(self, entry: dict) -> list[Path]:
        """Lock files the journaled fast-forward left: listed, not foreign, not older than it."""
        try:
            written = self.path.stat().st_mtime
        except FileNotFoundError:
            return []
        foreign = set(entry.get("foreign_locks") or [])
        stale = []
        for name in entry.get("locks") or []:
            lock = Path(name)
            with contextlib.suppress(FileNotFoundError):
                if name not in foreign and lock.stat().st_mtime >= written:
                    stale.append(lock)
        return stale


@dataclass
class RecoveryReport:
    """What :func:`recover` found and fixed."""

    journal: str | None = None
    orphans: list[int] = field(default_factory=list)
    workspaces: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        """Whether there was anything to recover."""
        return bool(self.journal or self.orphans or self.workspaces or self.interrupted)


def recover(repo: GitRepo, memory: Memory, workspaces_dir: Path) -> RecoveryReport:
    """Undo what a killed process left behind; safe to run when nothing is left."""
    report = RecoveryReport()
    report.journal = _finish_journal(repo, CommitJournal(repo.agent_dir / JOURNAL_NAME))
    report.orphans = _kill_orphans(workspaces_dir)
    report.workspaces = remove_stale_workspaces(repo, workspaces_dir)
    report.interrupted = memory.mark_interrupted()
    ensure_writable_dir(workspaces_dir)
    if report.anything:
        _LOG.warning(
            "recovered from an interrupted run",
            extra={
                "journal": report.journal,
                "orphan_pytest_pids": report.orphans,
                "stale_workspaces": report.workspaces,
                "interrupted_cycles": report.interrupted,
            },
        )
    return report


def _finish_journal(repo: GitRepo, journal: CommitJournal) -> str | None:
    """Complete or undo a fast-forward a killed process left, touching only what it wrote."""
    entry = journal.read()
    if entry is None:
        return None
    if not entry:
        journal.clear()
        return "discarded a torn journal entry"
    for lock in journal.stale_locks(entry):
        lock.unlink(missing_ok=True)
    head = repo.head()
    if head == entry["commit"]:
        outcome = "the commit was complete"
        edited = repo.dirty_paths(entry["paths"])
        if edited:
            outcome += f"; later changes to {', '.join(edited)} were left as they are"
    elif head == entry["base"]:
        restored = repo.rollback_paths(entry["base"], entry["commit"], entry["paths"])
        kept = sorted(set(repo.dirty_paths(entry["paths"])))
        outcome = "the commit never landed; " + (
            f"{', '.join(restored)} restored to the base" if restored else "nothing was written"
        )
        if kept:
            outcome += f"; {', '.join(kept)} changed by someone else, left as they are"
    else:
        outcome = f"HEAD is at neither the base nor the commit ({head}); left as it is"
    journal.clear()
    return f"{entry['correlation_id']}: {outcome}"


def _kill_orphans(workspaces_dir: Path) -> list[int]:
    killed = []
    for pid_file in workspaces_dir.glob(f"*{PYTEST_PID_SUFFIX}") if workspaces_dir.is_dir() else []:
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (ValueError, OSError):
            cmdline = b""
            pid = 0
        if pid and b"pytest" in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
                killed.append(pid)
        pid_file.unlink(missing_ok=True)
    return killed
