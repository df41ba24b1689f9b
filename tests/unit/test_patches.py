"""Patch plans: parsed strictly, applied exactly, never outside the repository.

A plan either applies completely — every block matched literally and exactly once, every
path inside the root — or fails with a bounded reason before a single byte is written.
Files keep their encoding, byte-order mark, line endings, trailing newline and mode.
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from hephaestus.agent.models import CycleError, Operation, Patch, PatchPlan, Reason
from hephaestus.agent.patches import apply_plan, confine_plan, parse_plan, planned_files, safe_path


def plan(*patches: dict[str, Any]) -> PatchPlan:
    """A plan parsed from the JSON shape the architect returns."""
    return parse_plan({"analysis": "test", "patches_to_apply": list(patches)})


def replace(path: str, block: str, content: str) -> dict[str, Any]:
    return {
        "file_path": path,
        "operation": "REPLACE",
        "block_to_replace": block,
        "content": content,
    }


def create(path: str, content: str) -> dict[str, Any]:
    return {"file_path": path, "operation": "CREATE_FILE", "content": content}


def insert(path: str, line_number: Any, content: str) -> dict[str, Any]:
    return {
        "file_path": path,
        "operation": "INSERT",
        "line_number": line_number,
        "content": content,
    }


def delete(path: str, block: str) -> dict[str, Any]:
    return {"file_path": path, "operation": "DELETE_BLOCK", "block_to_delete": block}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (not following symlinks) and its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def fails_with(reason: Reason, the_plan: PatchPlan, root: Path) -> CycleError:
    """Apply ``the_plan`` expecting ``reason``; the tree under ``root`` must be unchanged."""
    before = snapshot(root)
    with pytest.raises(CycleError) as info:
        apply_plan(the_plan, root)
    assert info.value.reason is reason
    assert info.value.detail
    assert snapshot(root) == before
    return info.value


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "mod.py").write_text("import os\n\n\ndef f(x):\n    return x\n")
    return repo


# -- parse_plan: the architect's answer schema, then the rules it cannot state ----------------
def patches(*items: Any) -> dict[str, Any]:
    return {"analysis": "test", "patches_to_apply": list(items)}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param([], "the answer must be an object, got array", id="not-an-object"),
        pytest.param("patches", "the answer must be an object, got string", id="a-string"),
        pytest.param({"patches_to_apply": []}, "field analysis is missing", id="no-analysis"),
        pytest.param(
            {"analysis": {"steps": 1}, "patches_to_apply": []},
            "field analysis must be a string, got object",
            id="analysis-not-a-string",
        ),
        pytest.param({"analysis": "x"}, "field patches_to_apply is missing", id="no-list"),
        pytest.param(
            {"analysis": "x", "patches_to_apply": {"file_path": "a.py"}},
            "field patches_to_apply must be an array, got object",
            id="list-is-a-dict",
        ),
        pytest.param(patches(), "the plan has no patches", id="empty-list"),
        pytest.param(
            patches("a.py"),
            "field patches_to_apply[0] must be an object, got string",
            id="entry-not-an-object",
        ),
        pytest.param(
            patches({"operation": "CREATE_FILE", "content": ""}),
            "field patches_to_apply[0].file_path is missing",
            id="no-file-path",
        ),
        pytest.param(
            patches(create("  ", "")),
            "field patches_to_apply[0].file_path is empty",
            id="blank-file-path",
        ),
        pytest.param(
            patches({"file_path": "a.py", "operation": "RENAME"}),
            "field patches_to_apply[0].operation must be one of REPLACE, CREATE_FILE, INSERT, "
            "DELETE_BLOCK, got 'RENAME'",
            id="unknown-operation",
        ),
        pytest.param(
            patches(replace("a.py", "x", "y") | {"operation": "replace"}),
            "field patches_to_apply[0].operation must be one of",
            id="operation-in-lower-case",
        ),
        pytest.param(
            patches({"file_path": "a.py"}),
            "field patches_to_apply[0].operation is missing",
            id="no-operation",
        ),
        pytest.param(
            patches(create("a.py", "x = 1\n"), create("b.py", 42)),
            "field patches_to_apply[1].content must be a string, got integer",
            id="content-not-a-string",
        ),
        pytest.param(
            patches({"file_path": "a.py", "operation": "CREATE_FILE"}),
            "field patches_to_apply[0].content is missing",
            id="create-without-content",
        ),
        pytest.param(
            patches({"file_path": "a.py", "operation": "REPLACE", "content": "y"}),
            "field patches_to_apply[0].block_to_replace is missing",
            id="replace-without-block",
        ),
        pytest.param(
            patches(replace("a.py", "", "y")),
            "field patches_to_apply[0].block_to_replace is empty",
            id="replace-with-empty-block",
        ),
        pytest.param(
            patches(replace("a.py", ["x"], "y")),
            "field patches_to_apply[0].block_to_replace must be a string, got array",
            id="replace-with-non-string-block",
        ),
        pytest.param(
            patches({"file_path": "a.py", "operation": "DELETE_BLOCK", "block_to_replace": "x"}),
            "field patches_to_apply[0].block_to_delete is missing",
            id="delete-names-the-wrong-key",
        ),
        pytest.param(
            patches(delete("a.py", "")),
            "field patches_to_apply[0].block_to_delete is empty",
            id="delete-with-empty-block",
        ),
        pytest.param(
            patches({"file_path": "a.py", "operation": "INSERT", "content": "x"}),
            "field patches_to_apply[0].line_number is missing",
            id="insert-without-line",
        ),
        pytest.param(
            patches(insert("a.py", 0, "x")),
            "field patches_to_apply[0].line_number must be >= 1, got 0",
            id="insert-at-line-0",
        ),
        pytest.param(
            patches(insert("a.py", -3, "x")),
            "field patches_to_apply[0].line_number must be >= 1, got -3",
            id="insert-at-negative-line",
        ),
        pytest.param(
            patches(insert("a.py", "2", "x")),
            "field patches_to_apply[0].line_number must be an integer, got string",
            id="insert-line-as-string",
        ),
        pytest.param(
            patches(insert("a.py", 2.0, "x")),
            "field patches_to_apply[0].line_number must be an integer, got number",
            id="insert-line-as-float",
        ),
        pytest.param(
            patches(insert("a.py", True, "x")),
            "field patches_to_apply[0].line_number must be an integer, got boolean",
            id="insert-line-as-bool",
        ),
    ],
)
def test_a_malformed_plan_is_an_invalid_plan_that_names_the_field(data, problem):
    with pytest.raises(CycleError) as info:
        parse_plan(data)

    assert info.value.reason is Reason.INVALID_PLAN
    assert info.value.detail.startswith(problem)


def test_parsed_plan_keeps_analysis_and_patch_order():
    parsed = parse_plan(
        {
            "analysis": "why",
            "patches_to_apply": [
                insert("b.py", 3, "x = 1\n"),
                delete("a.py", "y = 2\n"),
                create("c.py", ""),
                replace("a.py", "x", "z"),
            ],
        }
    )

    assert parsed.analysis == "why"
    assert [(p.file_path, p.operation) for p in parsed.patches] == [
        ("b.py", Operation.INSERT),
        ("a.py", Operation.DELETE_BLOCK),
        ("c.py", Operation.CREATE_FILE),
        ("a.py", Operation.REPLACE),
    ]
    assert parsed.patches[0].line_number == 3
    assert parsed.patches[1].block == "y = 2\n"
    assert (parsed.patches[3].block, parsed.patches[3].content) == ("x", "z")


def test_keys_the_plan_does_not_use_are_ignored():
    parsed = parse_plan(
        {
            "analysis": "why",
            "confidence": 0.9,
            "patches_to_apply": [create("c.py", "x = 1\n") | {"note": "new module"}],
        }
    )

    assert parsed.patches == (Patch("c.py", Operation.CREATE_FILE, content="x = 1\n"),)


# -- REPLACE and DELETE_BLOCK -----------------------------------------------------------------
def test_replace_swaps_the_exact_block(root):
    touched = apply_plan(plan(replace("pkg/mod.py", "    return x\n", "    return x + 1\n")), root)

    assert touched == ("pkg/mod.py",)
    assert (root / "pkg/mod.py").read_text() == "import os\n\n\ndef f(x):\n    return x + 1\n"


def test_missing_block_is_a_patch_conflict(root):
    error = fails_with(
        Reason.PATCH_CONFLICT, plan(replace("pkg/mod.py", "return y\n", "return z\n")), root
    )

    assert "not found" in error.detail


def test_ambiguous_block_is_a_patch_conflict(root):
    (root / "twice.py").write_text("x = 1\ny = 2\nx = 1\n")

    error = fails_with(Reason.PATCH_CONFLICT, plan(replace("twice.py", "x = 1\n", "x = 3\n")), root)

    assert "2 times" in error.detail


def test_overlapping_occurrences_are_ambiguous(root):
    (root / "passes.py").write_text("def f():\n    pass\n    pass\n    pass\n")

    fails_with(Reason.PATCH_CONFLICT, plan(delete("passes.py", "    pass\n    pass\n")), root)


def test_block_that_looks_like_a_regex_is_matched_literally(root):
    (root / "rx.py").write_text("PATTERN = r'a.*b'\nOTHER = 'aXXb'\n")

    apply_plan(plan(replace("rx.py", "'a.*b'", "'a.+b'")), root)

    assert (root / "rx.py").read_text() == "PATTERN = r'a.+b'\nOTHER = 'aXXb'\n"


def test_regex_block_does_not_match_text_it_would_match_as_a_pattern(root):
    (root / "rx.py").write_text("value = 'aXXb'\n")

    fails_with(Reason.PATCH_CONFLICT, plan(replace("rx.py", "a.*b", "c")), root)


def test_delete_block_removes_the_block(root):
    apply_plan(plan(delete("pkg/mod.py", "import os\n\n\n")), root)

    assert (root / "pkg/mod.py").read_text() == "def f(x):\n    return x\n"


def test_patch_on_a_missing_file_is_a_patch_conflict(root):
    fails_with(Reason.PATCH_CONFLICT, plan(replace("pkg/nope.py", "x", "y")), root)


def test_several_patches_on_one_file_apply_in_order(root):
    apply_plan(
        plan(
            replace("pkg/mod.py", "return x\n", "return step\n"),
            # the second patch sees the first one's result
            replace("pkg/mod.py", "return step\n", "return x * 2\n"),
            insert("pkg/mod.py", 1, '"""Doc."""\n'),
            delete("pkg/mod.py", "import os\n"),
        ),
        root,
    )

    assert (root / "pkg/mod.py").read_text() == '"""Doc."""\n\n\ndef f(x):\n    return x * 2\n'


def test_apply_returns_each_touched_file_once_in_first_touch_order(root):
    (root / "b.py").write_text("b = 1\n")

    touched = apply_plan(
        plan(
            replace("b.py", "1", "2"), replace("pkg/mod.py", "os", "sys"), replace("b.py", "2", "3")
        ),
        root,
    )

    assert touched == ("b.py", "pkg/mod.py")


def test_plan_failing_part_way_writes_nothing(root):
    (root / "b.py").write_text("b = 1\n")

    fails_with(
        Reason.PATCH_CONFLICT,
        plan(
            replace("pkg/mod.py", "return x", "return -x"),
            create("pkg/new/fresh.py", "y = 1\n"),
            replace("b.py", "b = 1", "b = 2"),
            replace("b.py", "no such text", "z"),
        ),
        root,
    )

    assert not (root / "pkg" / "new").exists()


def test_plan_failing_on_encoding_of_a_later_file_writes_nothing(root):
    (root / "legacy.py").write_bytes(b"# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n")

    fails_with(
        Reason.PATCH_CONFLICT,
        plan(
            replace("pkg/mod.py", "return x", "return -x"),
            replace("legacy.py", "name", "price = '5 \u20ac'\nname"),
        ),
        root,
    )


# -- CREATE_FILE ------------------------------------------------------------------------------
def test_create_file_makes_missing_directories(root):
    apply_plan(plan(create("pkg/deep/er/new.py", "VALUE = 1\n")), root)

    assert (root / "pkg/deep/er/new.py").read_text() == "VALUE = 1\n"


def test_created_file_ends_with_a_newline(root):
    apply_plan(plan(create("new.py", "VALUE = 1")), root)

    assert (root / "new.py").read_bytes() == b"VALUE = 1\n"


def test_created_file_may_be_empty(root):
    apply_plan(plan(create("pkg/py.typed", "")), root)

    assert (root / "pkg/py.typed").read_bytes() == b""


def test_creating_an_existing_file_is_a_patch_conflict(root):
    error = fails_with(Reason.PATCH_CONFLICT, plan(create("pkg/mod.py", "x = 1\n")), root)

    assert "already exists" in error.detail


def test_creating_the_same_file_twice_in_one_plan_is_a_patch_conflict(root):
    fails_with(
        Reason.PATCH_CONFLICT, plan(create("new.py", "a = 1\n"), create("new.py", "b = 2\n")), root
    )

    assert not (root / "new.py").exists()


def test_created_file_can_be_patched_later_in_the_same_plan(root):
    apply_plan(plan(create("new.py", "a = 1\n"), replace("new.py", "a = 1", "a = 2")), root)

    assert (root / "new.py").read_text() == "a = 2\n"


# -- INSERT -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line_number", "expected"),
    [
        pytest.param(1, "new\none\ntwo\nthree\n", id="first-line"),
        pytest.param(2, "one\nnew\ntwo\nthree\n", id="middle"),
        pytest.param(3, "one\ntwo\nnew\nthree\n", id="before-last-line"),
        pytest.param(4, "one\ntwo\nthree\nnew\n", id="after-the-end"),
    ],
)
def test_insert_goes_before_the_given_line(root, line_number, expected):
    (root / "lines.txt").write_text("one\ntwo\nthree\n")

    apply_plan(plan(insert("lines.txt", line_number, "new")), root)

    assert (root / "lines.txt").read_text() == expected


def test_insert_past_the_end_is_a_patch_conflict(root):
    (root / "lines.txt").write_text("one\ntwo\nthree\n")

    error = fails_with(Reason.PATCH_CONFLICT, plan(insert("lines.txt", 5, "new\n")), root)

    assert "3 lines" in error.detail


def test_insert_into_an_empty_file(root):
    (root / "empty.py").write_bytes(b"")

    apply_plan(plan(insert("empty.py", 1, "x = 1\n")), root)

    assert (root / "empty.py").read_text() == "x = 1\n"


def test_insert_at_the_end_of_a_file_without_final_newline_keeps_it_without(root):
    (root / "lines.txt").write_bytes(b"one\ntwo")

    apply_plan(plan(insert("lines.txt", 3, "three\n")), root)

    assert (root / "lines.txt").read_bytes() == b"one\ntwo\nthree"


# -- unsafe paths -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/etc/passwd", id="absolute-posix"),
        pytest.param("C:\\Windows\\win.ini", id="windows-drive"),
        pytest.param("C:/Windows/win.ini", id="windows-drive-forward-slashes"),
        pytest.param("C:relative.py", id="windows-drive-relative"),
        pytest.param("\\\\server\\share\\x.py", id="windows-unc"),
        pytest.param("\\etc\\passwd", id="backslash-rooted"),
        pytest.param("../outside.py", id="leading-dotdot"),
        pytest.param("pkg/../../outside.py", id="dotdot-in-the-middle"),
        pytest.param("pkg/../mod.py", id="dotdot-that-stays-inside"),
        pytest.param("pkg\\..\\..\\outside.py", id="dotdot-with-backslashes"),
        pytest.param(".git/config", id="git-dir"),
        pytest.param("./.git/hooks/pre-commit", id="git-dir-dotted"),
        pytest.param("sub/.git/x", id="nested-git-dir"),
        pytest.param(".hephaestus/x", id="state-dir"),
        pytest.param("pkg/mod\x00.py", id="nul-byte"),
        pytest.param(".", id="dot"),
        pytest.param("./", id="dot-slash"),
    ],
)
def test_unsafe_path_is_refused(root, path):
    error = fails_with(Reason.UNSAFE_PATH, plan(create(path, "x = 1\n")), root)

    assert repr(path) in error.detail


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "C:\\x.py", "\\etc\\passwd", "\\\\server\\share\\x.py"]
)
def test_rooted_path_is_reported_as_absolute(root, path):
    error = fails_with(Reason.UNSAFE_PATH, plan(create(path, "x = 1\n")), root)

    assert "absolute" in error.detail


def test_empty_path_is_unsafe(root):
    with pytest.raises(CycleError) as info:
        safe_path(root, "")

    assert info.value.reason is Reason.UNSAFE_PATH


def test_unsafe_path_anywhere_in_the_plan_writes_nothing(root):
    fails_with(
        Reason.UNSAFE_PATH,
        plan(replace("pkg/mod.py", "os", "sys"), create("../escape.py", "x = 1\n")),
        root,
    )

    assert not (root.parent / "escape.py").exists()


def test_symlinked_file_pointing_outside_is_unsafe(root, tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("secret = 1\n")
    (root / "link.py").symlink_to(outside)

    fails_with(Reason.UNSAFE_PATH, plan(replace("link.py", "secret = 1", "secret = 2")), root)

    assert outside.read_text() == "secret = 1\n"


def test_symlinked_directory_pointing_outside_is_unsafe(root, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "ext").symlink_to(outside, target_is_directory=True)

    fails_with(Reason.UNSAFE_PATH, plan(create("ext/new.py", "x = 1\n")), root)

    assert list(outside.iterdir()) == []


def test_symlink_that_stays_inside_the_root_is_allowed(root):
    (root / "alias").symlink_to(root / "pkg", target_is_directory=True)

    apply_plan(plan(replace("alias/mod.py", "return x", "return x - 1")), root)

    assert "return x - 1" in (root / "pkg/mod.py").read_text()


def test_root_reached_through_a_symlink_still_works(root, tmp_path):
    link = tmp_path / "link-to-repo"
    link.symlink_to(root, target_is_directory=True)

    touched = apply_plan(plan(replace("pkg/mod.py", "return x", "return 0")), link)

    assert touched == ("pkg/mod.py",)
    assert "return 0" in (root / "pkg/mod.py").read_text()


def test_directory_named_like_a_reserved_one_deeper_down_is_allowed(root):
    apply_plan(
        plan(
            create("docs/.hephaestus-notes/x.md", "note\n"),
            create("pkg/.github/ci.yml", "on: push\n"),
        ),
        root,
    )

    assert (root / "pkg/.github/ci.yml").is_file()


# -- what a file keeps ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content", ["b = 3\n", "b = 3"], ids=["content-with-newline", "content-without"]
)
@pytest.mark.parametrize(
    ("original", "block", "expected"),
    [
        pytest.param(b"a = 1\nb = 2\n", "b = 2\n", b"a = 1\nb = 3\n", id="file-ends-with-newline"),
        pytest.param(b"a = 1\nb = 2", "b = 2", b"a = 1\nb = 3", id="file-ends-without"),
    ],
)
def test_trailing_newline_state_of_the_file_is_kept(root, original, block, content, expected):
    (root / "f.py").write_bytes(original)

    apply_plan(plan(replace("f.py", block, content)), root)

    assert (root / "f.py").read_bytes() == expected


def test_deleting_the_last_line_keeps_the_trailing_newline(root):
    (root / "f.py").write_bytes(b"a = 1\nb = 2\n")

    apply_plan(plan(delete("f.py", "\nb = 2")), root)

    assert (root / "f.py").read_bytes() == b"a = 1\n"


def test_crlf_file_stays_crlf(root):
    (root / "win.py").write_bytes(b"a = 1\r\nb = 2\r\nc = 3\r\n")

    # the model's block and content use plain \n (or CRLF); both must work
    apply_plan(
        plan(
            replace("win.py", "a = 1\nb = 2\n", "a = 10\nb = 20\n"),
            replace("win.py", "c = 3\r\n", "c = 30\r\nd = 40\r\n"),
        ),
        root,
    )

    assert (root / "win.py").read_bytes() == b"a = 10\r\nb = 20\r\nc = 30\r\nd = 40\r\n"


def test_utf8_bom_is_kept(root):
    (root / "bom.py").write_bytes(codecs.BOM_UTF8 + "name = 'é'\n".encode())

    apply_plan(plan(replace("bom.py", "'é'", "'è'")), root)

    assert (root / "bom.py").read_bytes() == codecs.BOM_UTF8 + "name = 'è'\n".encode()


def test_latin1_file_with_coding_cookie_stays_latin1(root):
    (root / "legacy.py").write_bytes(b"# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n")

    apply_plan(plan(replace("legacy.py", "'café'", "'crème'")), root)

    assert (root / "legacy.py").read_bytes() == (b"# -*- coding: latin-1 -*-\nname = 'cr\xe8me'\n")


def test_coding_cookie_on_the_second_line_is_honoured(root):
    (root / "legacy.py").write_bytes(
        b"#!/usr/bin/env python\n# vim: set fileencoding=iso-8859-15 :\nprice = '5 \xa4'\n"
    )

    apply_plan(plan(replace("legacy.py", "price", "cost")), root)

    assert (root / "legacy.py").read_bytes().endswith(b"cost = '5 \xa4'\n")


def test_undeclared_non_utf8_bytes_round_trip(root):
    original = b"data = '\xff\xfe raw \x80'\nx = 1\n"
    (root / "raw.py").write_bytes(original)

    apply_plan(plan(replace("raw.py", "x = 1", "x = 2")), root)

    assert (root / "raw.py").read_bytes() == original.replace(b"x = 1", b"x = 2")


def test_unknown_coding_cookie_falls_back_without_losing_bytes(root):
    original = b"# coding: no-such-codec\nv = '\xe9'\n"
    (root / "odd.py").write_bytes(original)

    apply_plan(plan(replace("odd.py", "v =", "w =")), root)

    assert (root / "odd.py").read_bytes() == original.replace(b"v =", b"w =")


def test_text_the_file_encoding_cannot_hold_is_a_patch_conflict(root):
    (root / "legacy.py").write_bytes(b"# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n")

    error = fails_with(
        Reason.PATCH_CONFLICT, plan(replace("legacy.py", "'café'", "'\u20ac'")), root
    )

    assert "latin-1" in error.detail


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_executable_bit_is_preserved(root):
    script = root / "run.py"
    script.write_text("#!/usr/bin/env python\nprint('hi')\n")
    script.chmod(0o755)

    apply_plan(plan(replace("run.py", "'hi'", "'hello'")), root)

    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert "hello" in script.read_text()


def test_patch_objects_built_directly_are_applied_too(root):
    # apply_plan does not depend on parse_plan: a hand-built plan goes through the same checks
    direct = PatchPlan("direct", (Patch("pkg/mod.py", Operation.REPLACE, "y", "x"),))

    fails_with(Reason.PATCH_CONFLICT, direct, root)  # "x" occurs more than once


# -- bounded content and confinement before any read ------------------------------------------
def test_new_content_per_file_is_capped_across_patches():
    half = "x" * 600
    plan = {
        "analysis": "",
        "patches_to_apply": [
            {"file_path": "a.py", "operation": "INSERT", "line_number": 1, "content": half},
            {"file_path": "b.py", "operation": "INSERT", "line_number": 1, "content": half},
            {"file_path": "a.py", "operation": "INSERT", "line_number": 1, "content": half},
        ],
    }

    parse_plan(plan, max_file_bytes=1200)  # 1200 bytes into a.py: at the cap
    with pytest.raises(CycleError) as info:
        parse_plan(plan, max_file_bytes=1199)

    assert info.value.reason is Reason.INVALID_PLAN
    assert "over 1199 bytes into 'a.py'" in info.value.detail
    assert "agent.max_plan_file_bytes" in info.value.detail


def test_the_cap_counts_bytes_not_characters():
    patch = {"file_path": "a.md", "operation": "CREATE_FILE", "content": "é" * 6}
    plan = {"analysis": "", "patches_to_apply": [patch]}

    with pytest.raises(CycleError, match="over 11 bytes"):
        parse_plan(plan, max_file_bytes=11)


@pytest.mark.parametrize("path", ["/etc/passwd", "../x.py", ".git/config", "pkg/../../x"])
def test_confine_plan_refuses_any_path_that_leaves_the_root(tmp_path, path):
    patches = (Patch("ok.py", Operation.CREATE_FILE, "x"), Patch(path, Operation.CREATE_FILE, "x"))
    plan = PatchPlan("", patches)

    with pytest.raises(CycleError) as info:
        confine_plan(plan, tmp_path)

    assert info.value.reason is Reason.UNSAFE_PATH


def test_planned_files_computes_the_result_without_writing(tmp_path):
    (tmp_path / "a.py").write_text("A = 1\n")
    plan = PatchPlan("", (Patch("a.py", Operation.REPLACE, "A = 2", block="A = 1"),))

    planned = planned_files(plan, tmp_path)

    assert planned["a.py"][1].text == "A = 2\n"
    assert (tmp_path / "a.py").read_text() == "A = 1\n"
