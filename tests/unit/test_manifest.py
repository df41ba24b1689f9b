"""The manifest: what the agent knows of the target repository at the start of a cycle.

It lists tracked files only, marks the test suite (which plans leave alone), names the
symbols of each Python file and carries non-test sources up to a byte budget, so prompts
stay bounded however large the repository is.
"""

from __future__ import annotations

import os

import pytest
from factories import git, make_target_repo

from hephaestus.agent import manifest
from hephaestus.agent.manifest import FileEntry, Manifest, is_test_file, scan

FILES = {
    "pkg/__init__.py": "",
    "pkg/alpha.py": "def f():\n    return 1\n\n\nclass Box:\n    def get(self):\n        pass\n",
    "pkg/beta.py": "B = 2\n" * 50,
    "pkg/broken.py": "def (:\n",
    "tests/test_alpha.py": "def test_f():\n    assert True\n",
    "README.md": "# readme\n",
}


@pytest.fixture
def repo(tmp_path):
    return make_target_repo(tmp_path / "target", FILES)


def scan_all(root, **kwargs):
    return scan(root, **{"max_files": 100, "max_source_bytes": 100_000, **kwargs})


# -- which files are tests --------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "tests/test_mod.py",
        "tests/helpers.py",
        "pkg/test/util.py",
        "test_mod.py",
        "pkg/mod_test.py",
        "conftest.py",
        "pkg/conftest.py",
    ],
)
def test_the_suite_its_helpers_and_conftest_are_test_files(path):
    assert is_test_file(path)


@pytest.mark.parametrize(
    "path", ["pkg/latest.py", "pkg/testing_tools.py", "contest.py", "pkg/attest/mod.py"]
)
def test_names_that_merely_contain_test_are_not_test_files(path):
    assert not is_test_file(path)


# -- what a scan lists ------------------------------------------------------------------------
def test_scan_lists_every_tracked_file_with_size_lines_and_test_mark(repo):
    manifest = scan_all(repo)

    by_path = {f.path: f for f in manifest.files}
    assert sorted(by_path) == sorted(FILES)
    assert by_path["pkg/beta.py"] == FileEntry("pkg/beta.py", 300, 50, False, ())
    assert by_path["tests/test_alpha.py"].is_test
    assert not by_path["README.md"].is_test
    assert manifest.total_files == len(FILES) and not manifest.truncated
    assert manifest.has_tests


def test_untracked_files_and_symlinks_are_not_listed(repo):
    (repo / "pkg" / "scratch.py").write_text("X = 1\n")
    os.symlink("/etc/hostname", repo / "pkg" / "link.py")
    git(repo, "add", "pkg/link.py")

    paths = [f.path for f in scan_all(repo).files]

    assert "pkg/scratch.py" not in paths
    assert "pkg/link.py" not in paths


def test_symbols_are_top_level_functions_classes_and_methods(repo):
    by_path = {f.path: f for f in scan_all(repo).files}

    assert by_path["pkg/alpha.py"].symbols == ("f", "Box", "Box.get")
    assert by_path["pkg/broken.py"].symbols == ()  # unparseable: listed, without symbols
    assert by_path["README.md"].symbols == ()


# -- bounds -----------------------------------------------------------------------------------
def test_sources_are_non_test_python_files_within_the_byte_budget(repo):
    manifest = scan_all(repo, max_source_bytes=len(FILES["pkg/alpha.py"]) + 10)

    # in path order: alpha fits, beta (300 bytes) does not, the small broken file still does;
    # the empty __init__ and the test file are not sent
    assert manifest.sources == {"pkg/alpha.py": FILES["pkg/alpha.py"], "pkg/broken.py": "def (:\n"}


def test_a_zero_budget_sends_no_source(repo):
    assert scan_all(repo, max_source_bytes=0).sources == {}


def test_the_file_cap_truncates_the_listing_but_not_the_knowledge_of_tests(tmp_path):
    root = make_target_repo(tmp_path / "t", {"a.py": "A = 1\n", "b.py": "", "tests/test_z.py": ""})

    manifest = scan_all(root, max_files=2)

    assert [f.path for f in manifest.files] == ["a.py", "b.py"]
    assert manifest.total_files == 3 and manifest.truncated
    assert manifest.has_tests  # decided from every tracked path


def test_a_repository_without_tests_says_so(tmp_path):
    root = make_target_repo(tmp_path / "t", {"a.py": "A = 1\n"})

    assert not scan_all(root).has_tests


def test_history_and_blocked_objectives_are_carried_through(repo):
    recent = ({"objective": "Add a docstring", "outcome": "failed"},)

    manifest = scan_all(repo, recent_cycles=recent, blocked_objectives=("Add a docstring",))

    assert manifest.recent_cycles == recent
    assert manifest.blocked_objectives == ("Add a docstring",)


# -- the prompt's view ------------------------------------------------------------------------
def test_the_prompt_carries_the_listing_and_whether_it_was_cut():
    manifest = Manifest(
        files=(FileEntry("a.py", 6, 1, False, ("f",)), FileEntry("tests/test_a.py", 0, 0, True)),
        total_files=5,
        sources={"a.py": "A = 1\n"},
    )

    assert manifest.to_prompt() == {
        "files": [
            {"path": "a.py", "size": 6, "lines": 1, "test": False, "symbols": ["f"]},
            {"path": "tests/test_a.py", "size": 0, "lines": 0, "test": True, "symbols": []},
        ],
        "total_files": 5,
        "truncated": True,
    }
    assert "sources" not in manifest.to_prompt()  # sources travel beside it, budgeted


# -- cost: a scan reads only what changed -----------------------------------------------------
@pytest.fixture
def reads(monkeypatch):
    """The paths a scan reads from disk (the manifest's one reader, counted)."""
    seen: list[str] = []
    learn = manifest._learn

    def counting(full, **kwargs):
        seen.append(full.name)
        return learn(full, **kwargs)

    monkeypatch.setattr(manifest, "_learn", counting)
    monkeypatch.setattr(manifest, "_BLOBS", manifest._BlobCache())
    return seen


def test_a_second_scan_reads_no_file_and_sees_the_same(repo, reads):
    first = scan_all(repo)
    read_first = len(reads)
    second = scan_all(repo)

    assert read_first == len(FILES)
    assert len(reads) == read_first  # every blob was known
    assert second == first


def test_a_scan_after_a_commit_reads_only_the_changed_file(repo, reads, tmp_path):
    scan_all(repo)
    (repo / "pkg" / "beta.py").write_text("B = 3\n")
    git(repo, "commit", "-qam", "change beta")
    reads.clear()

    after = scan_all(repo)

    assert reads == ["beta.py"]
    (beta,) = [f for f in after.files if f.path == "pkg/beta.py"]
    assert (beta.size, beta.lines) == (6, 1)
    assert after.sources["pkg/beta.py"] == "B = 3\n"


def test_the_same_content_under_a_test_path_is_still_marked_a_test(tmp_path, reads):
    body = "def test_x():\n    pass\n"
    root = make_target_repo(tmp_path / "t", {"pkg/helper.py": body, "tests/test_x.py": body})

    listed = {f.path: f for f in scan_all(root).files}

    assert listed["tests/test_x.py"].is_test and not listed["pkg/helper.py"].is_test
    assert listed["tests/test_x.py"].symbols == listed["pkg/helper.py"].symbols == ("test_x",)
    assert len(reads) == 1  # one blob, read once


def test_the_remembered_blobs_are_bounded(repo):
    cache = manifest._BlobCache(max_entries=2)
    for path in FILES:
        blob = git(repo, "rev-parse", f"HEAD:{path}").strip()
        cache.facts(repo, path, blob, 1000)
    assert len(cache._facts) == 2


def test_a_replaced_version_is_forgotten_so_memory_follows_the_tree_not_the_cycles(repo, reads):
    scan_all(repo)
    for value in range(5):  # five cycles, each replacing beta.py
        (repo / "pkg" / "beta.py").write_text(f"B = {value}\n")
        git(repo, "commit", "-qam", f"beta {value}")
        scan_all(repo)

    remembered = {key[0] for key in manifest._BLOBS._facts}
    tracked = {line.split()[1] for line in git(repo, "ls-files", "-s").splitlines()}
    assert remembered == tracked
