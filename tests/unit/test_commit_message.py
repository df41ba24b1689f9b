"""Commit subjects: ``type(scope): description``, one plain line of at most 72 characters.

Whatever the objective's text looks like — Markdown, several lines, very long — the subject
is a clean conventional-commit line that ``git log --oneline`` shows whole.
"""

from __future__ import annotations

import random
import re
import string

import pytest

from hephaestus.agent.commit_message import MAX_SUBJECT, commit_message, sanitise
from hephaestus.agent.models import Objective

TYPES = ("docs", "test", "fix", "refactor", "perf", "chore")
SUBJECT = re.compile(
    rf"^(?:{'|'.join(TYPES)})(?:\((?P<scope>[a-z0-9_-]{{1,20}})\))?: (?P<desc>\S.*)$"
)


def subject(text: str, kind: str = "freeform", file_path: str | None = None) -> str:
    return commit_message(Objective(text=text, kind=kind, file_path=file_path))


def commit_type(message: str) -> str:
    return message.split(":", 1)[0].split("(", 1)[0]


def description(message: str) -> str:
    return message.split(": ", 1)[1]


# -- type -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("module_docstring", "docs"),
        ("function_docstring", "docs"),
        ("unused_import", "refactor"),
        ("none_comparison", "fix"),
        ("bare_except", "fix"),
    ],
)
def test_type_follows_the_objective_kind(kind, expected):
    # the text alone would suggest another type: the kind decides
    assert commit_type(subject("Tidy up pkg/mod.py", kind, "pkg/mod.py")) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Add a docstring to parse_row", "docs"),
        ("Document the pricing rules", "docs"),
        ("Add tests for the CSV loader", "test"),
        ("Fix the rounding of negative totals", "fix"),
        ("Handle the bug in stock moves", "fix"),
        ("Refactor the report builder", "refactor"),
        ("Remove the dead branch in reports", "refactor"),
        ("Speed up value_by_category", "perf"),
        ("Improve performance of the loader", "perf"),
        ("Rename a variable", "chore"),
        ("", "chore"),
    ],
)
def test_type_is_guessed_from_free_text(text, expected):
    assert commit_type(subject(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Use the latest pricing table",  # "test" inside a word
        "Rename the prefix argument",  # "fix" inside a word
        "Add debug logging to the loader",  # "bug" inside a word
    ],
)
def test_keywords_inside_other_words_do_not_decide_the_type(text):
    assert commit_type(subject(text)) == "chore"


# -- scope ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("file_path", "scope"),
    [
        ("pkg/mod.py", "mod"),
        ("loader.py", "loader"),
        ("src/HTTP-Client.py", "http-client"),
        ("inventory/stock_moves.py", "stock_moves"),
        ("docs/guide.v2.md", "guidev2"),
    ],
)
def test_scope_is_the_file_stem(file_path, scope):
    match = SUBJECT.match(subject("Tidy up", "freeform", file_path))

    assert match is not None
    assert match["scope"] == scope


def test_long_file_stem_gives_a_short_scope():
    long_path = "pkg/" + "very_long_module_name" * 3 + ".py"

    match = SUBJECT.match(subject("Tidy up", file_path=long_path))

    assert match is not None
    assert 0 < len(match["scope"]) <= 20


@pytest.mark.parametrize("file_path", [None, "", "pkg/☃.py"])
def test_no_usable_file_gives_no_scope(file_path):
    message = subject("Fix the loader", "freeform", file_path)

    assert message.startswith("fix: ")


@pytest.mark.parametrize(
    "text",
    [
        "Remove unused import os from pkg/mod.py",
        "Catch Exception instead of a bare except: in pkg/mod.py:12",
        "Compare with `is None` instead of `== None` in `pkg/mod.py:7`",
        "Add a docstring to f() in pkg/mod.py",
    ],
)
def test_file_path_suffix_is_dropped_when_it_is_the_scope(text):
    message = subject(text, "freeform", "pkg/mod.py")

    assert message.startswith(commit_type(message) + "(mod): ")
    assert "pkg/mod.py" not in message
    assert not re.search(r"\b(in|from)$", message)


def test_other_file_paths_in_the_text_are_kept():
    message = subject("Move helpers from pkg/util.py", "freeform", "pkg/mod.py")

    assert "pkg/util.py" in message


# -- description ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Use `is None` in `parse_row`", "use is None in parse_row", id="backticks"),
        pytest.param("**Fix** the *rounding*", "fix the rounding", id="bold-and-italic"),
        pytest.param("__Fix__ the _rounding_", "fix the rounding", id="underscore-emphasis"),
        pytest.param(
            "See [the docs](https://example.com/a_b) for [API](x)",
            "see the docs for API",
            id="links-reduced-to-text",
        ),
        pytest.param("## Refactor the loader", "refactor the loader", id="heading"),
        pytest.param("> Remove the ~~old~~ path", "remove the old path", id="quote-strike"),
        pytest.param("Add <b>docs</b> to stock_value", "add docs to stock_value", id="html-tags"),
        pytest.param("  Fix   the\tloader  ", "fix the loader", id="spaces-collapsed"),
    ],
)
def test_markdown_is_removed(text, expected):
    assert description(subject(text)) == expected


def test_only_the_first_non_empty_line_is_kept():
    message = subject("\n\n  Fix the loader\nIt crashed on empty rows.\n- and more")

    assert message == "fix: fix the loader"


@pytest.mark.parametrize("text", ["", "   \n`` ** ", "...", "## :", "[](http://x)"])
def test_text_without_words_still_gives_a_description(text):
    message = subject(text, "bare_except")

    assert SUBJECT.match(message)
    assert description(message).strip(" .:;,")


@pytest.mark.parametrize(
    ("text", "expected_start"),
    [
        ("HTTP client retries on 429", "HTTP client"),
        ("API keys never reach the logs", "API keys"),
        ("CSV loader handles BOMs", "CSV loader"),
        ("Add a docstring", "add a docstring"),
    ],
)
def test_first_word_is_lowercased_but_acronyms_stay_uppercase(text, expected_start):
    assert description(subject(text)).startswith(expected_start)


@pytest.mark.parametrize("ending", [".", "...", ":", ";", ",", " .", ". "])
def test_no_trailing_punctuation(ending):
    message = subject(f"Fix the loader{ending}")

    assert message == "fix: fix the loader"


# -- length -----------------------------------------------------------------------------------
def test_long_subject_is_cut_at_a_word_boundary():
    words = [f"word{i}" for i in range(40)]

    message = subject(" ".join(words), file_path="pkg/mod.py")

    assert len(message) <= MAX_SUBJECT
    assert description(message).split() == words[: len(description(message).split())]


def test_single_enormous_word_is_hard_cut_to_the_limit():
    message = subject("x" * 500)

    assert len(message) == MAX_SUBJECT
    assert message.startswith("chore: xxx")


def _odd_text(rng: random.Random) -> str:
    alphabet = (
        string.ascii_letters
        + string.digits
        + " \t\n\r`*_#>[]()<>|~.:;,-!?/\\\"'"
        + "éßЖ漢☃\u2028\u00a0"
    )
    pieces = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))),
        " ".join(
            "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 30)))
            for _ in range(rng.randint(0, 25))
        ),
        rng.choice(["", "## ", "**", "`", "[link](http://x.y/z) ", "> "]),
        rng.choice(["", ".", "...", ":", ";", ",", " - ", "\n\nbody text"]),
    ]
    rng.shuffle(pieces)
    return "".join(pieces)


def test_every_subject_is_one_clean_line_within_the_limit():
    rng = random.Random(20240601)
    kinds = [
        "freeform",
        "module_docstring",
        "function_docstring",
        "unused_import",
        "none_comparison",
        "bare_except",
        "something_new",
    ]
    paths = [None, "pkg/mod.py", "a/b/" + "long_name_" * 8 + ".py", "README.md", "weird name!.py"]
    for _ in range(1500):
        objective = Objective(
            text=_odd_text(rng), kind=rng.choice(kinds), file_path=rng.choice(paths)
        )

        message = commit_message(objective)

        assert len(message) <= MAX_SUBJECT, (objective, message)
        assert message == message.strip(), (objective, message)
        assert len(message.splitlines()) == 1, (objective, message)
        assert SUBJECT.match(message), (objective, message)
        assert message[-1] not in ".,;:", (objective, message)
        assert "`" not in message and "**" not in message, (objective, message)


# -- sanitise ---------------------------------------------------------------------------------
def test_sanitise_gives_plain_single_line_text():
    assert sanitise("- **Bold** [text](http://x) `code`\nsecond") == "Bold text code"


def test_sanitise_of_blank_text_is_empty():
    assert sanitise(" \n\t\n") == ""
