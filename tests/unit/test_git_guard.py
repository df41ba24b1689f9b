"""The target's ``.git`` as a cycle found it: what validation may not change, with the real git.

A patch's code runs during validation. Whatever it does to the target's git configuration,
hooks or refs is found before anything is committed; the branch the agent fast-forwards is
the one ref allowed to move.
"""

from __future__ import annotations

import pytest
from factories import git, make_target_repo

from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.guard import GitFingerprint
from hephaestus.agent.models import CycleError, Reason


@pytest.fixture
def repo(tmp_path):
    return GitRepo(make_target_repo(tmp_path / "target", {"a.py": "A = 1\n"}))


def test_an_untouched_repository_shows_no_change(repo):
    before = GitFingerprint.take(repo)

    assert before.changes(repo) == []
    before.verify(repo)


def test_the_branch_head_names_may_move_and_nothing_else_is_reported(repo):
    before = GitFingerprint.take(repo)

    git(repo.root, "commit", "-q", "--allow-empty", "-m", "the agent's fast-forward")

    assert before.changes(repo) == []


def test_a_new_or_moved_branch_or_tag_is_a_change(repo):
    git(repo.root, "branch", "release")
    before = GitFingerprint.take(repo)

    git(repo.root, "tag", "planted")
    git(repo.root, "commit", "-q", "--allow-empty", "-m", "moves main")
    git(repo.root, "branch", "-f", "release", "HEAD")

    assert before.changes(repo) == ["refs/heads/release", "refs/tags/planted"]


def test_pointing_head_at_another_branch_is_a_change(repo):
    git(repo.root, "branch", "other")
    before = GitFingerprint.take(repo)

    git(repo.root, "symbolic-ref", "HEAD", "refs/heads/other")

    assert "HEAD" in before.changes(repo)


def test_a_detached_head_is_fingerprinted_and_attaching_it_is_a_change(repo):
    git(repo.root, "checkout", "-q", "--detach")
    before = GitFingerprint.take(repo)

    assert before.refs["HEAD"] == "(detached)"
    assert "refs/heads/main" in before.refs  # no branch is left out when none is checked out

    git(repo.root, "checkout", "-q", "-")

    assert "HEAD" in before.changes(repo)


def test_a_planted_hook_or_config_edit_fails_the_cycle_with_unsafe_path(repo):
    before = GitFingerprint.take(repo)

    (repo.git_dir() / "hooks" / "post-merge").write_text("#!/bin/sh\necho owned\n")
    git(repo.root, "config", "core.pager", "sh -c 'echo owned'")

    with pytest.raises(CycleError) as failed:
        before.verify(repo)
    assert failed.value.reason is Reason.UNSAFE_PATH
    assert ".git/config" in str(failed.value)
    assert ".git/hooks/post-merge" in str(failed.value)
