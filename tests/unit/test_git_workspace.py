"""The target repository and the isolated workspaces a cycle edits, with the real ``git``.

The agent never edits the target tree: a cycle gets a detached worktree of HEAD, commits a
validated change there, and only then fast-forwards the target, bringing in exactly the files
it touched. Every other outcome removes the worktree and leaves the target byte-identical.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from factories import git, make_target_repo, repo_snapshot

from hephaestus.agent import gitrepo
from hephaestus.agent.gitrepo import (
    AGENT_DIR,
    GitError,
    GitLockBusy,
    GitRepo,
    NotAGitRepository,
)
from hephaestus.agent.gitrepo import git as run_git
from hephaestus.agent.workspace import (
    AgentWorkspace,
    Workspace,
    WorkspaceError,
    remove_stale_workspaces,
)

FILES = {
    "pkg/__init__.py": "",
    "pkg/a.py": "A = 1\n",
    "pkg/b.py": "B = 2\n",
    "README.md": "# target\n",
}


@pytest.fixture(autouse=True)
def isolated_git(tmp_path, monkeypatch):
    """No user or system git config, and no repository above ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_DIR",
        "GIT_WORK_TREE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo(tmp_path) -> GitRepo:
    return GitRepo.open(make_target_repo(tmp_path / "target", FILES))


@pytest.fixture
def parent(repo) -> Path:
    """Where workspaces go by default: ``.hephaestus/workspaces`` inside the target."""
    repo.ignore_agent_dir()
    return repo.agent_dir / "workspaces"


def worktrees(repo: GitRepo) -> list[Path]:
    out = git(repo.root, "worktree", "list", "--porcelain")
    return [
        Path(line.split(" ", 1)[1]).resolve()
        for line in out.splitlines()
        if line.startswith("worktree ")
    ]


# -- opening a repository ---------------------------------------------------------------------
def test_open_finds_the_top_level_from_a_subdirectory(repo):
    assert GitRepo.open(repo.root / "pkg").root.resolve() == repo.root.resolve()


def test_open_a_directory_outside_git_says_to_init_and_commit(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()

    with pytest.raises(NotAGitRepository, match="is not a git repository; run `git init`"):
        GitRepo.open(plain)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_open_something_that_is_not_a_directory_says_so(tmp_path, kind):
    path = tmp_path / "project"
    if kind == "file":
        path.write_text("")

    with pytest.raises(NotAGitRepository) as info:
        GitRepo.open(path)

    assert str(info.value).startswith(f"{path} is not a directory")
    assert "--project" in str(info.value)


def test_not_a_git_repository_is_a_git_error():
    assert issubclass(NotAGitRepository, GitError)


def test_an_empty_repository_has_no_head_and_require_head_says_to_commit(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    repo = GitRepo.open(empty)

    assert repo.head() is None
    with pytest.raises(GitError, match="no commits yet; make an initial commit first"):
        repo.require_head()


def test_require_head_returns_the_head_commit(repo):
    assert repo.require_head() == git(repo.root, "rev-parse", "HEAD").strip()


def test_a_failing_git_command_carries_gits_own_words(repo):
    with pytest.raises(GitError, match=r"git rev-parse --verify no-such-ref failed in .*: fatal"):
        run_git(["rev-parse", "--verify", "no-such-ref"], repo.root)


# -- keeping .hephaestus/ out of git ----------------------------------------------------------
@pytest.mark.parametrize(
    "existing",
    [None, "", "*.log", "*.log\n"],
    ids=["missing", "empty", "no-final-newline", "with-newline"],
)
def test_ignore_agent_dir_adds_one_exclude_line_and_keeps_status_clean(repo, existing):
    exclude = repo.root / ".git" / "info" / "exclude"
    if existing is None:
        exclude.unlink()
    else:
        exclude.write_text(existing)

    repo.ignore_agent_dir()
    repo.ignore_agent_dir()
    (repo.agent_dir / "workspaces").mkdir(parents=True)
    (repo.agent_dir / "memory.db").write_bytes(b"x")
    (repo.agent_dir / "workspaces" / "file.txt").write_text("x")

    lines = exclude.read_text().splitlines()
    assert lines.count(f"/{AGENT_DIR}/") == 1
    if existing and existing.strip():
        assert lines[0] == "*.log"
    assert git(repo.root, "status", "--porcelain", "--untracked-files=all") == ""


# -- identity --------------------------------------------------------------------------------
FALLBACK = {
    "GIT_AUTHOR_NAME": "Hephaestus",
    "GIT_AUTHOR_EMAIL": "hephaestus@localhost",
    "GIT_COMMITTER_NAME": "Hephaestus",
    "GIT_COMMITTER_EMAIL": "hephaestus@localhost",
}


@pytest.mark.parametrize(
    ("unset", "expected"),
    [
        ((), {}),
        (("user.email",), FALLBACK),
        (("user.name",), FALLBACK),
        (("user.name", "user.email"), FALLBACK),
    ],
)
def test_identity_env_falls_back_only_when_name_or_email_is_missing(repo, unset, expected):
    for key in unset:
        git(repo.root, "config", "--unset", key)

    assert repo.identity_env() == expected


def test_identity_from_the_users_global_config_is_used(repo, tmp_path, monkeypatch):
    git(repo.root, "config", "--unset", "user.name")
    git(repo.root, "config", "--unset", "user.email")
    global_config = tmp_path / "gitconfig"
    global_config.write_text("[user]\n\tname = Global\n\temail = global@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))

    assert repo.identity_env() == {}


# -- dirty paths -----------------------------------------------------------------------------
def test_dirty_paths_reports_modified_staged_and_untracked_paths_only(repo):
    (repo.root / "pkg" / "a.py").write_text("A = 10\n")
    (repo.root / "README.md").write_text("# staged\n")
    git(repo.root, "add", "README.md")
    (repo.root / "pkg" / "new.py").write_text("N = 0\n")

    dirty = repo.dirty_paths(["pkg/a.py", "pkg/b.py", "pkg/new.py", "README.md", "absent.py"])

    assert sorted(dirty) == ["README.md", "pkg/a.py", "pkg/new.py"]


def test_dirty_paths_of_nothing_is_nothing(repo):
    (repo.root / "pkg" / "a.py").write_text("A = 10\n")

    assert repo.dirty_paths([]) == []


# -- workspaces ------------------------------------------------------------------------------
def test_create_makes_a_detached_worktree_of_head_outside_the_target(repo, parent):
    before = repo_snapshot(repo.root)

    ws = Workspace.create(repo, parent, "cycle-1")

    assert ws.root == parent / "cycle-1"
    assert ws.root.resolve() != repo.root.resolve()
    assert ws.base == before["head"]
    assert git(ws.root, "rev-parse", "HEAD").strip() == ws.base
    assert git(ws.root, "rev-parse", "--abbrev-ref", "HEAD").strip() == "HEAD"  # detached
    assert (ws.root / "pkg" / "a.py").read_text() == "A = 1\n"
    assert ws.root.resolve() in worktrees(repo)
    assert repo_snapshot(repo.root) == before
    assert not list(parent.glob(".probe-*"))


def test_edits_in_the_workspace_leave_the_target_untouched(repo, parent):
    before = repo_snapshot(repo.root)
    ws = Workspace.create(repo, parent, "cycle-1")

    (ws.root / "pkg" / "a.py").write_text("A = 100\n")
    (ws.root / "pkg" / "new.py").write_text("N = 1\n")
    (ws.root / "README.md").unlink()

    assert repo_snapshot(repo.root) == before


def test_changed_paths_keeps_only_paths_that_really_differ(repo, parent):
    ws = Workspace.create(repo, parent, "cycle-1")
    (ws.root / "pkg" / "a.py").write_text("A = 100\n")
    (ws.root / "pkg" / "b.py").write_text("B = 2\n")  # rewritten, same bytes
    (ws.root / "pkg" / "new.py").write_text("N = 1\n")

    assert ws.changed_paths(("pkg/new.py", "pkg/b.py", "pkg/a.py")) == ("pkg/new.py", "pkg/a.py")


def test_commit_and_fast_forward_bring_exactly_the_touched_files(repo, parent):
    before = repo_snapshot(repo.root)
    ws = Workspace.create(repo, parent, "cycle-1")
    (ws.root / "pkg" / "a.py").write_text("A = 100\n")
    (ws.root / "pkg" / "new.py").write_text("N = 1\n")
    (ws.root / "pkg" / "b.py").write_text("B = 'not part of the change'\n")

    commit = ws.commit(("pkg/a.py", "pkg/new.py"), "refactor: bump A\n\nbody")
    repo.fast_forward(commit)

    after = repo_snapshot(repo.root)
    assert after["head"] == commit != before["head"]
    assert git(repo.root, "rev-parse", "HEAD~1").strip() == before["head"]
    changed = git(repo.root, "diff", "--name-only", before["head"], commit).split()
    assert changed == ["pkg/a.py", "pkg/new.py"]
    assert after["files"] == {**before["files"], "pkg/a.py": b"A = 100\n", "pkg/new.py": b"N = 1\n"}
    assert after["status"] == ""
    assert git(repo.root, "log", "-1", "--format=%B", commit) == "refactor: bump A\n\nbody\n\n"
    assert git(repo.root, "log", "-1", "--format=%an <%ae>").strip() == "Test <test@example.com>"


def test_commit_without_any_configured_identity_uses_the_fallback(repo, parent):
    git(repo.root, "config", "--unset", "user.name")
    git(repo.root, "config", "--unset", "user.email")
    ws = Workspace.create(repo, parent, "cycle-1")
    (ws.root / "pkg" / "a.py").write_text("A = 100\n")

    commit = ws.commit(("pkg/a.py",), "fix: a")

    author = git(repo.root, "log", "-1", "--format=%an <%ae>|%cn <%ce>", commit).strip()
    assert author == "Hephaestus <hephaestus@localhost>|Hephaestus <hephaestus@localhost>"


def test_fast_forward_refuses_a_commit_that_is_not_a_descendant(repo, parent):
    ws = Workspace.create(repo, parent, "cycle-1")
    (ws.root / "pkg" / "a.py").write_text("A = 100\n")
    commit = ws.commit(("pkg/a.py",), "fix: a")
    (repo.root / "README.md").write_text("# moved on\n")
    git(repo.root, "commit", "-qam", "meanwhile")
    before = repo_snapshot(repo.root)

    with pytest.raises(GitError, match="merge --ff-only"):
        repo.fast_forward(commit)

    assert repo_snapshot(repo.root) == before


def test_discard_removes_the_worktree_and_is_safe_twice(repo, parent):
    before = repo_snapshot(repo.root)
    ws = Workspace.create(repo, parent, "cycle-1")
    (ws.root / "pkg" / "a.py").write_text("A = 100\n")
    (ws.root / "untracked.txt").write_text("x\n")

    ws.discard()
    ws.discard()

    assert not ws.root.exists()
    assert worktrees(repo) == [repo.root.resolve()]
    assert repo_snapshot(repo.root) == before


def test_an_unwritable_workspace_parent_is_a_workspace_error_naming_it(repo, tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        if os.access(parent, os.W_OK):
            pytest.skip("running as root: chmod does not stop root from writing")
        with pytest.raises(WorkspaceError) as info:
            Workspace.create(repo, parent / "workspaces", "cycle-1")
    finally:
        parent.chmod(0o755)

    assert f"workspace directory {parent / 'workspaces'} is not writable" in str(info.value)
    assert "agent.workspace_dir" in str(info.value)


def test_a_workspace_parent_that_is_a_file_is_a_workspace_error_naming_it(repo, tmp_path):
    parent = tmp_path / "workspaces"
    parent.write_text("I am a file")
    before = repo_snapshot(repo.root)

    with pytest.raises(WorkspaceError) as info:
        Workspace.create(repo, parent, "cycle-1")

    assert f"workspace directory {parent} is not writable" in str(info.value)
    assert "agent.workspace_dir" in str(info.value)
    assert parent.read_text() == "I am a file"
    assert worktrees(repo) == [repo.root.resolve()]
    assert repo_snapshot(repo.root) == before


def test_create_in_an_empty_repository_says_to_commit_first(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")

    with pytest.raises(GitError, match="make an initial commit first"):
        Workspace.create(GitRepo.open(empty), tmp_path / "ws", "cycle-1")


# -- recovery after a crash ------------------------------------------------------------------
def test_remove_stale_workspaces_removes_leftover_worktrees_and_prunes(repo, parent):
    before = repo_snapshot(repo.root)
    left = [Workspace.create(repo, parent, name) for name in ("cycle-2", "cycle-1")]
    (left[0].root / "pkg" / "a.py").write_text("half-applied\n")
    orphan = parent / "cycle-3"  # its worktree was already removed by hand
    orphan.mkdir()
    (parent / "stray.txt").write_text("not a workspace")

    removed = remove_stale_workspaces(repo, parent)

    assert removed == ["cycle-1", "cycle-2", "cycle-3"]
    assert [p.name for p in parent.iterdir()] == ["stray.txt"]
    assert worktrees(repo) == [repo.root.resolve()]
    assert repo_snapshot(repo.root) == before


def test_remove_stale_workspaces_prunes_worktrees_whose_dir_vanished(repo, parent):
    ws = Workspace.create(repo, parent, "cycle-1")
    shutil.rmtree(ws.root)

    assert remove_stale_workspaces(repo, parent) == []
    assert worktrees(repo) == [repo.root.resolve()]


def test_remove_stale_workspaces_without_a_parent_dir_removes_nothing(repo, tmp_path):
    assert remove_stale_workspaces(repo, tmp_path / "never-created") == []


# -- rolling back what the agent wrote -------------------------------------------------------
@pytest.fixture
def agents_commit(repo) -> tuple[str, str]:
    """(base, commit): a child of HEAD that edits pkg/a.py, deletes nothing, adds pkg/new.py."""
    base = repo.require_head()
    (repo.root / "pkg" / "a.py").write_text("A = 'agent'\n")
    (repo.root / "pkg" / "new.py").write_text("N = 'agent'\n")
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", "the agent's change")
    commit = repo.require_head()
    git(repo.root, "reset", "-q", "--hard", base)
    return base, commit


def write_commit_content(repo: GitRepo, commit: str, *paths: str, stage: bool = False) -> None:
    for path in paths:
        (repo.root / path).write_text(git(repo.root, "show", f"{commit}:{path}"))
    if stage:
        git(repo.root, "add", "--", *paths)


@pytest.mark.parametrize("stage", [False, True], ids=["work-tree", "work-tree-and-index"])
def test_rollback_restores_files_that_hold_the_commits_content(repo, agents_commit, stage):
    before = repo_snapshot(repo.root)
    base, commit = agents_commit
    write_commit_content(repo, commit, "pkg/a.py", "pkg/new.py", stage=stage)

    restored = repo.rollback_paths(base, commit, ["pkg/a.py", "pkg/new.py", "pkg/b.py"])

    assert restored == ["pkg/a.py", "pkg/new.py"]
    assert repo_snapshot(repo.root) == before


def test_rollback_leaves_a_file_someone_else_changed_exactly_as_it_is(repo, agents_commit):
    base, commit = agents_commit
    (repo.root / "pkg" / "a.py").write_text("A = 'the operator'\n")
    (repo.root / "pkg" / "new.py").write_text("N = 'the operator'\n")

    restored = repo.rollback_paths(base, commit, ["pkg/a.py", "pkg/new.py"])

    assert restored == []
    assert (repo.root / "pkg" / "a.py").read_text() == "A = 'the operator'\n"
    assert (repo.root / "pkg" / "new.py").read_text() == "N = 'the operator'\n"


def test_rollback_with_nothing_written_changes_nothing(repo, agents_commit):
    before = repo_snapshot(repo.root)
    base, commit = agents_commit

    assert repo.rollback_paths(base, commit, ["pkg/a.py", "pkg/new.py", "never.py"]) == []
    assert repo_snapshot(repo.root) == before


# -- git runs nothing the repository names ----------------------------------------------------
def test_pathspec_magic_in_a_file_name_names_one_file(repo):
    for name in ("pkg/*", ":(glob)**", "*.py"):
        (repo.root / name).parent.mkdir(parents=True, exist_ok=True)
        (repo.root / name).write_text("x\n")

    assert sorted(repo.dirty_paths(["pkg/*", ":(glob)**"])) == [":(glob)**", "pkg/*"]
    run_git(["add", "--", "pkg/*"], repo.root)
    staged = git(repo.root, "diff", "--cached", "--name-only", "-z").strip("\0").split("\0")
    assert staged == ["pkg/*"]


def test_odd_file_names_come_back_from_status_as_they_are_spelled(repo):
    names = ["sp ace.txt", "naïve.txt", "new\nline.txt", 'quo"te.txt']
    for name in names:
        (repo.root / name).write_text("x\n")

    assert sorted(repo.dirty_paths(names)) == sorted(names)


def test_hooks_and_hook_paths_in_config_never_run(repo, tmp_path):
    marker = tmp_path / "ran"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("pre-commit", "post-checkout", "post-merge"):
        (hooks / name).write_text(f'#!/bin/sh\necho {name} >> "{marker}"\n')
        (hooks / name).chmod(0o755)
    git(repo.root, "config", "core.hooksPath", str(hooks))

    ws = Workspace.create(repo, repo.agent_dir / "workspaces", "hooked")
    (ws.root / "pkg" / "a.py").write_text("A = 3\n")
    ws.commit(("pkg/a.py",), "change")

    assert not marker.exists()


def test_variables_that_redirect_git_or_name_a_program_are_dropped(monkeypatch, tmp_path):
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_SSH_COMMAND", "evil")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Operator")

    env = gitrepo.git_env({"EXTRA": "1"})

    assert {"GIT_DIR", "GIT_SSH_COMMAND", "GIT_CONFIG_COUNT"}.isdisjoint(env)
    assert env["GIT_AUTHOR_NAME"] == "Operator" and env["EXTRA"] == "1"
    assert env["GIT_LITERAL_PATHSPECS"] == "1"


def test_a_lock_held_past_the_wait_is_a_clear_error(repo, monkeypatch):
    monkeypatch.setattr(gitrepo, "LOCK_WAIT", 0.1)
    naps: list[float] = []
    monkeypatch.setattr(gitrepo, "_sleep", naps.append)
    (repo.root / ".git" / "index.lock").write_bytes(b"")
    (repo.root / "pkg" / "a.py").write_text("A = 3\n")

    with pytest.raises(GitLockBusy) as info:
        run_git(["add", "--", "pkg/a.py"], repo.root)

    assert "another git process held" in str(info.value) and "index.lock" in str(info.value)
    assert naps and sum(naps) >= 0.1  # it waited before giving up


def test_the_git_dir_branch_and_paths_are_absolute(repo):
    assert repo.git_dir() == (repo.root / ".git").resolve()
    assert repo.branch() == "refs/heads/main"
    assert repo.git_path("index.lock") == (repo.root / ".git" / "index.lock").resolve()
    git(repo.root, "checkout", "-q", "--detach")
    assert repo.branch() == ""


def test_rollback_of_a_file_named_like_a_glob_takes_back_that_file_only(repo):
    base = repo.require_head()
    (repo.root / "pkg" / "*").write_text("a file named star\n")
    git(repo.root, "add", "--", "pkg/*")
    git(repo.root, "commit", "-q", "-m", "the agent's odd file")
    commit = repo.require_head()
    git(repo.root, "reset", "-q", "--soft", base)  # as a torn fast-forward leaves it

    assert repo.rollback_paths(base, commit, ["pkg/*"]) == ["pkg/*"]

    assert not (repo.root / "pkg" / "*").exists()
    assert (repo.root / "pkg" / "a.py").read_text() == "A = 1\n"  # the folder is intact
    assert (repo.root / "pkg" / "b.py").read_text() == "B = 2\n"
    assert git(repo.root, "status", "--porcelain", "--untracked-files=all") == ""


# -- the agent's one worktree, reset each cycle -----------------------------------------------
def tree_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def test_the_agent_workspace_is_one_worktree_reset_to_head_each_time(repo, parent):
    slot = AgentWorkspace(repo, parent)
    first = slot.open()
    pristine = tree_of(first.root)
    (first.root / "pkg" / "a.py").write_text("A = 'edited'\n")  # a tracked change
    (first.root / "pkg" / "new.py").write_text("N = 1\n")  # an untracked file
    (first.root / "build" / "cache").mkdir(parents=True)  # untracked directories
    (first.root / "build" / "cache" / "x.pyc").write_bytes(b"\0")
    git(first.root, "add", "pkg/new.py")  # and a staged one

    second = slot.open()

    assert second.root == first.root
    assert tree_of(second.root) == pristine
    assert git(second.root, "status", "--porcelain", "--ignored").strip() == ""
    assert worktrees(repo) == [repo.root.resolve(), first.root.resolve()]


def test_the_agent_workspace_follows_head_after_a_commit_lands(repo, parent):
    slot = AgentWorkspace(repo, parent)
    workspace = slot.open()
    (workspace.root / "pkg" / "a.py").write_text("A = 100\n")
    repo.fast_forward(workspace.commit(("pkg/a.py",), "refactor: bump A"))

    again = slot.open()

    assert again.base == repo.require_head() != workspace.base
    assert (again.root / "pkg" / "a.py").read_text() == "A = 100\n"
    assert git(again.root, "rev-parse", "HEAD").strip() == again.base


def test_the_agent_workspace_keeps_its_agent_dir_and_is_removed_on_close(repo, parent):
    slot = AgentWorkspace(repo, parent)
    workspace = slot.open()
    (workspace.root / ".hephaestus").mkdir()
    (workspace.root / ".hephaestus" / "kept").write_text("x")

    assert (slot.open().root / ".hephaestus" / "kept").exists()

    slot.close()
    slot.close()  # safe twice
    assert worktrees(repo) == [repo.root.resolve()]
    assert not workspace.root.exists()


def test_a_worktree_removed_under_the_agent_is_made_again(repo, parent):
    slot = AgentWorkspace(repo, parent)
    workspace = slot.open()
    shutil.rmtree(workspace.root)

    again = slot.open()

    assert (again.root / "pkg" / "a.py").read_text() == "A = 1\n"
    assert worktrees(repo) == [repo.root.resolve(), again.root.resolve()]
