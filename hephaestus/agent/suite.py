"""What makes up a project's test suite, so that a plan cannot weaken it.

The tests are the oracle that decides whether a change is committed; a model that could
edit them could pass anything. Test files, every ``conftest.py``, pytest's ini files
(``pytest.ini``, ``tox.ini``, ``setup.cfg``) and pytest's table in ``pyproject.toml`` are
off limits to a plan, unless the operator allows test edits and the objective is about tests.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

from hephaestus.agent.manifest import is_test_file
from hephaestus.agent.models import CycleError, Objective, PatchPlan
from hephaestus.agent.patches import TextFile, planned_files, safe_path

_PYTEST_INI_FILES = frozenset({"pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg"})
_ABOUT_TESTS = re.compile(r"\b(tests?|testing|pytest|conftest)\b", re.IGNORECASE)


def is_about_tests(objective: Objective) -> bool:
    """Whether the objective itself is about the tests (its kind, file or wording)."""
    return (
        "test" in objective.kind.lower()
        or (objective.file_path is not None and is_test_file(objective.file_path))
        or bool(_ABOUT_TESTS.search(objective.text))
    )


def suite_files(plan: PatchPlan, root: Path) -> list[str]:
    """The files of ``plan`` that belong to the test suite or configure pytest."""
    found = [
        path
        for path in plan.files
        if is_test_file(path) or PurePosixPath(path).name in _PYTEST_INI_FILES
    ]
    pyprojects = [p for p in plan.files if PurePosixPath(p).name == "pyproject.toml"]
    if pyprojects and _changes_pytest_table(plan, root, pyprojects):
        found.append("pyproject.toml [tool.pytest]")
    return found


def _changes_pytest_table(plan: PatchPlan, root: Path, paths: list[str]) -> bool:
    try:
        after = planned_files(plan, root)
    except CycleError:
        return False  # the plan does not apply; the apply stage says why
    for path in paths:
        target = safe_path(root, path)
        key = target.relative_to(root.resolve()).as_posix()
        before = TextFile.decode(target.read_bytes()).text if target.is_file() else ""
        if _pytest_table(before) != _pytest_table(after[key][1].text):
            return True
    return False


def _pytest_table(text: str) -> Any:
    try:
        tool = tomllib.loads(text).get("tool")
    except tomllib.TOMLDecodeError:
        return "unparseable"  # an edit that breaks the file may break pytest's config too
    return tool.get("pytest") if isinstance(tool, dict) else None
