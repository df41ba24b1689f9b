"""Bringing a change into the target never costs the operator their work.

Real git, real locks: another process holding ``index.lock`` (as an editor's ``git status``
loop does), a fast-forward that fails, a journal a killed process left with git's own lock
files, a repository in the middle of a merge. Whatever happens, the agent only ever takes
back what it wrote itself.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from factories import (
    git,
    make_agent,
    make_config,
    make_target_repo,
    repo_snapshot,
    run_cli,
    run_one_cycle,
    start_conflicting_merge,
)

from hephaestus.agent import gitrepo
from hephaestus.agent.gitrepo import GitRepo, RepositoryBusy
from hephaestus.agent.memory import Memory
from hephaestus.agent.models import Outcome, Reason, Stage
from hephaestus.agent.recovery import JOURNAL_NAME, CommitJournal, recover, ref_locks

pytestmark = pytest.mark.slow


def journal_of(repo: Path) -> Path:
    return repo / ".hephaestus" / JOURNAL_NAME


def hold_index_lock_at_commit(repo: Path):
    """An ``on_stage`` listener that takes ``.git/index.lock`` as the commit stage starts."""
    lock = repo / ".git" / "index.lock"

    def listener(_result, stage):
        if stage is Stage.COMMIT:
            lock.write_bytes(b"")

    return listener, lock


# -- another git process holds the index ------------------------------------------------------
def test_a_lock_another_process_releases_is_waited_for_and_the_cycle_commits(
    sample_repo, monkeypatch
):
    listener, lock = hold_index_lock_at_commit(sample_repo)
    waits: list[float] = []

    def the_other_process_finishes(seconds: float) -> None:
        waits.append(seconds)
        lock.unlink(missing_ok=True)  # released while the agent waits

    monkeypatch.setattr(gitrepo, "_sleep", the_other_process_finishes)
    result = run_one_cycle(make_config(), sample_repo, on_stage=listener)

    assert result.outcome is Outcome.SUCCEEDED, result.detail
    assert waits, "the fast-forward never met the lock"
    assert git(sample_repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_failed_fast_forward_is_rolled_back_at_once_and_a_restart_keeps_later_edits(
    sample_repo, monkeypatch
):
    monkeypatch.setattr(gitrepo, "LOCK_WAIT", 0.2)
    listener, lock = hold_index_lock_at_commit(sample_repo)
    before = repo_snapshot(sample_repo)
    result = run_one_cycle(make_config(), sample_repo, on_stage=listener)

    assert result.reason is Reason.PATCH_CONFLICT, result.detail
    assert "index.lock" in result.detail and "rolled back" in result.detail
    assert not journal_of(sample_repo).exists()  # cleared right there, not left for later
    assert repo_snapshot(sample_repo) == before
    lock.unlink()

    touched = sample_repo / result.files[0]
    touched.write_text(touched.read_text() + "# the operator's later edit\n")
    edited = touched.read_text()
    make_agent(make_config(), sample_repo).close()  # a restart runs recovery

    assert touched.read_text() == edited


def test_an_editors_git_status_loop_beside_the_agent_causes_no_internal_error(sample_repo):
    stop = threading.Event()

    def editor() -> None:  # git status refreshes the index, taking index.lock each time
        while not stop.is_set():
            subprocess.run(
                ["git", "status", "--porcelain"], cwd=sample_repo, capture_output=True, check=False
            )

    thread = threading.Thread(target=editor, daemon=True)
    thread.start()
    runner = make_agent(make_config(), sample_repo)
    try:
        results = [runner.run_cycle() for _ in range(4)]
    finally:
        runner.close()
        stop.set()
        thread.join()

    assert [r.reason for r in results if r.reason is Reason.INTERNAL_ERROR] == []
    assert all(r.outcome is Outcome.SUCCEEDED or "index.lock" in r.detail for r in results), [
        (r.reason, r.detail) for r in results
    ]
    assert git(sample_repo, "status", "--porcelain", "--untracked-files=all") == ""


# -- what recovery may take back --------------------------------------------------------------
@pytest.fixture
def landed(tmp_path: Path) -> tuple[GitRepo, str, str]:
    """A repo at base B and a commit C (child of B) changing pkg/a.py and pkg/b.py."""
    path = make_target_repo(
        tmp_path / "target", {"pkg/a.py": "A = 1\n", "pkg/b.py": "B = 1\n", "README.md": "r\n"}
    )
    base = git(path, "rev-parse", "HEAD").strip()
    (path / "pkg" / "a.py").write_text("A = 2\n")
    (path / "pkg" / "b.py").write_text("B = 2\n")
    (path / "pkg" / "new.py").write_text("N = 2\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "what the agent would have committed")
    commit = git(path, "rev-parse", "HEAD").strip()
    git(path, "reset", "-q", "--hard", base)
    repo = GitRepo.open(path)
    repo.ignore_agent_dir()
    repo.agent_dir.mkdir()
    return repo, base, commit


def torn(repo: GitRepo, base: str, commit: str, locks: list[str]) -> CommitJournal:
    """What a kill -9 in the middle of ``git merge --ff-only`` leaves behind."""
    journal = CommitJournal(repo.agent_dir / JOURNAL_NAME)
    paths = ("pkg/a.py", "pkg/b.py", "pkg/new.py")
    journal.write(base, commit, paths, "torn-cycle", ref_locks(repo, repo.branch()))
    for path in paths:  # git wrote the commit's files...
        (repo.root / path).write_bytes(git(repo.root, "show", f"{commit}:{path}").encode())
    for name in locks:  # ...and died holding its locks
        (repo.root / ".git" / name).write_bytes(b"")
    return journal


def test_recovery_takes_back_only_files_that_hold_the_agents_content(landed, tmp_path):
    repo, base, commit = landed
    journal = torn(repo, base, commit, ["index.lock"])
    (repo.root / "pkg" / "b.py").write_text("B = 'the operator typed this'\n")

    report = recover(repo, Memory(tmp_path / "memory.db"), repo.agent_dir / "workspaces")

    assert (repo.root / "pkg" / "a.py").read_text() == "A = 1\n"  # the agent's: taken back
    assert not (repo.root / "pkg" / "new.py").exists()  # created by the agent: removed
    assert (repo.root / "pkg" / "b.py").read_text() == "B = 'the operator typed this'\n"
    assert "pkg/b.py changed by someone else, left as they are" in report.journal
    assert git(repo.root, "rev-parse", "HEAD").strip() == base
    assert not (repo.root / ".git" / "index.lock").exists()
    assert journal.read() is None


def test_recovery_removes_the_ref_locks_a_killed_fast_forward_left_and_the_next_cycle_commits(
    landed, tmp_path
):
    repo, base, commit = landed
    torn(repo, base, commit, ["index.lock", "HEAD.lock", "refs/heads/main.lock"])

    recover(repo, Memory(tmp_path / "memory.db"), repo.agent_dir / "workspaces")

    for name in ("index.lock", "HEAD.lock", "refs/heads/main.lock"):
        assert not (repo.root / ".git" / name).exists(), name
    assert git(repo.root, "status", "--porcelain", "--untracked-files=all") == ""
    git(repo.root, "commit", "-q", "--allow-empty", "-m", "git works again")


def test_recovery_leaves_a_lock_that_was_there_before_the_fast_forward(landed, tmp_path):
    repo, base, commit = landed
    theirs = repo.root / ".git" / "HEAD.lock"
    theirs.write_bytes(b"")  # another process's, older than the journal
    torn(repo, base, commit, ["index.lock"])

    recover(repo, Memory(tmp_path / "memory.db"), repo.agent_dir / "workspaces")

    assert theirs.exists()
    assert not (repo.root / ".git" / "index.lock").exists()


def test_no_fast_forward_starts_over_an_unfinished_journal(sample_repo):
    runner = make_agent(make_config(), sample_repo)
    journal = journal_of(sample_repo)
    journal.write_text('{"base": "x", "commit": "y", "paths": [], "correlation_id": "old"}')
    before = repo_snapshot(sample_repo)
    try:
        result = runner.run_cycle()
    finally:
        runner.close()

    assert result.reason is Reason.PATCH_CONFLICT, result.detail
    assert "unfinished fast-forward" in result.detail and "old" in result.detail
    assert repo_snapshot(sample_repo) == before
    assert journal.exists()


# -- a repository in the middle of something --------------------------------------------------
def test_a_repository_in_the_middle_of_a_merge_is_refused_at_start(sample_repo):
    start_conflicting_merge(sample_repo)
    before = repo_snapshot(sample_repo)

    with pytest.raises(RepositoryBusy) as info:
        make_agent(make_config(), sample_repo)
    proc = run_cli("run", "--project", sample_repo, "--cycles", "1")

    assert "in the middle of a merge" in str(info.value)
    assert proc.returncode == 1, proc.stderr
    assert "hephaestus: error:" in proc.stderr and "git merge --abort" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert repo_snapshot(sample_repo) == before


@pytest.mark.parametrize(
    ("marker", "what"),
    [
        ("rebase-merge", "a rebase"),
        ("CHERRY_PICK_HEAD", "a cherry-pick"),
        ("BISECT_LOG", "a bisect"),
        ("REVERT_HEAD", "a revert"),
    ],
)
def test_each_unfinished_operation_is_named(tmp_path, marker, what):
    repo = GitRepo.open(make_target_repo(tmp_path / "target", {"a.txt": "a\n"}))
    target = repo.root / ".git" / marker
    target.mkdir() if marker == "rebase-merge" else target.write_text("x\n")

    assert what in repo.operation_in_progress()


def test_a_merge_started_while_the_agent_runs_fails_cycles_early_and_clearly(sample_repo):
    runner = make_agent(make_config(), sample_repo)
    try:
        start_conflicting_merge(sample_repo)
        before = repo_snapshot(sample_repo)
        result = runner.run_cycle()
    finally:
        runner.close()

    assert result.reason is Reason.PATCH_CONFLICT, result.detail
    assert "in the middle of a merge" in result.detail
    assert list(result.durations) == ["scan", "record"]  # no model was asked
    assert repo_snapshot(sample_repo) == before
