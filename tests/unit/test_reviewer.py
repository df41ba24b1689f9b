"""The code reviewer: rules first, then the code_reviewer model.

The rules reject what no model may approve (too many files, edits of the test suite or of
pytest's configuration, deleted test code). In ``risky_only`` mode a small, plain Python
edit is approved by the rules alone; anything risky still goes to the model, which here is
the real offline engine behind the real router, so the prompt and its parsing run for real.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from factories import make_target_repo

from hephaestus.agent.models import CycleError, Objective, Operation, Patch, PatchPlan, Reason
from hephaestus.agent.reviewer import is_risky, review_plan, rule_verdict
from hephaestus.config import ROLES
from hephaestus.llm.base import Message, Role
from hephaestus.llm.client import RoleModels
from hephaestus.llm.offline import OfflineProvider
from hephaestus.resilience import RetryPolicy

PRICING = "pkg/pricing.py"
SOURCE = '"""Pricing."""\n\n\ndef price(x):\n    return x * 2\n'


class RecordingProvider(OfflineProvider):
    """The offline engine, remembering which roles it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[Role] = []

    def chat(self, role: Role, model: str, messages: Sequence[Message], *args: Any, **kw: Any):
        self.asked.append(role)
        return super().chat(role, model, messages, *args, **kw)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_target_repo(
        tmp_path / "target",
        {PRICING: SOURCE, "tests/test_pricing.py": "def test_price():\n    assert True\n"},
    )


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


def review(
    provider: RecordingProvider,
    root: Path,
    *patches: Patch,
    mode: str = "always",
    objective: str = "Make pricing clearer",
    allow_test_edits: bool = False,
    max_files: int = 5,
):
    models = RoleModels(provider, {r: ["m"] for r in ROLES}, policy=RetryPolicy(attempts=1))
    return review_plan(
        models,
        Objective(text=objective),
        PatchPlan("analysis", patches),
        root,
        max_files=max_files,
        mode=mode,
        allow_test_edits=allow_test_edits,
    )


def replace(path: str = PRICING, block: str = "x * 2", content: str = "2 * x") -> Patch:
    return Patch(path, Operation.REPLACE, content=content, block=block)


# -- rules that reject without asking the model -----------------------------------------------
def test_a_plan_touching_more_files_than_allowed_is_rejected_by_rule(provider, root):
    patches = [Patch(f"pkg/new{i}.py", Operation.CREATE_FILE, content="X = 1\n") for i in range(3)]

    verdict = review(provider, root, *patches, max_files=2)

    assert not verdict.approved and verdict.by_rule
    assert "touches 3 files; at most 2" in verdict.feedback
    assert "agent.max_patch_files" in verdict.feedback  # names the setting to change
    assert provider.asked == []


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param(replace("tests/test_pricing.py", "assert True", "pass"), id="test-file"),
        pytest.param(Patch("conftest.py", Operation.CREATE_FILE, content="X = 1\n"), id="conftest"),
        pytest.param(Patch("pytest.ini", Operation.CREATE_FILE, content="[pytest]\n"), id="ini"),
    ],
)
def test_a_plan_that_edits_the_test_suite_is_rejected_by_rule(provider, root, patch):
    verdict = review(provider, root, patch)

    assert not verdict.approved and verdict.by_rule
    assert "edits the test suite" in verdict.feedback
    assert "agent.allow_test_edits" in verdict.feedback
    assert provider.asked == []


def test_a_plan_that_changes_pytest_s_table_in_pyproject_is_rejected_by_rule(provider, tmp_path):
    root = make_target_repo(tmp_path / "t", {"pyproject.toml": "[tool.pytest.ini_options]\n"})
    patch = Patch(
        "pyproject.toml",
        Operation.INSERT,
        content='addopts = "--deselect tests"\n',
        line_number=2,
    )

    verdict = review(provider, root, patch)

    assert not verdict.approved and "pyproject.toml [tool.pytest]" in verdict.feedback


def test_a_pyproject_edit_outside_pytest_s_table_goes_to_the_model(provider, tmp_path):
    text = '[project]\nname = "x"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n'
    root = make_target_repo(tmp_path / "t", {"pyproject.toml": text})

    review(provider, root, replace("pyproject.toml", 'name = "x"', 'name = "y"'))

    assert provider.asked == [Role.CODE_REVIEWER]


def test_test_edits_pass_the_rules_only_when_allowed_and_the_objective_is_about_tests(
    provider, root
):
    patch = replace("tests/test_pricing.py", "assert True", "assert 1 == 1")

    allowed = review(
        provider, root, patch, objective="Tidy the pricing tests", allow_test_edits=True
    )
    not_about_tests = review(provider, root, patch, allow_test_edits=True)

    assert not allowed.by_rule  # the rules let it through; the model judged it
    assert not_about_tests.by_rule and not not_about_tests.approved


def test_deleting_test_code_is_rejected_even_when_test_edits_are_allowed():
    plan = PatchPlan("a", (Patch("tests/test_pricing.py", Operation.DELETE_BLOCK, block="x"),))
    objective = Objective(text="Remove a slow test")

    verdict = rule_verdict(plan, 5, objective, None, allow_test_edits=True)

    assert verdict is not None and not verdict.approved
    assert verdict.feedback == "the plan deletes test code in tests/test_pricing.py"


def test_a_plan_within_the_rules_has_no_rule_verdict(root):
    assert rule_verdict(PatchPlan("a", (replace(),)), 5, Objective(text="x"), root) is None


def test_paths_are_confined_before_any_rule_or_read(provider, root):
    with pytest.raises(CycleError) as info:
        review(provider, root, replace("../outside.py"))

    assert info.value.reason is Reason.UNSAFE_PATH
    assert provider.asked == []


# -- which plans the model must see -----------------------------------------------------------
@pytest.mark.parametrize(
    ("patch", "risky"),
    [
        pytest.param(replace(), False, id="small-python-edit"),
        pytest.param(Patch("pkg/new.py", Operation.CREATE_FILE, content="X = 1\n"), True, id="new"),
        pytest.param(Patch(PRICING, Operation.DELETE_BLOCK, block="x"), True, id="deletion"),
        pytest.param(replace("README.md", "a", "b"), True, id="not-python"),
        pytest.param(replace("tests/test_x.py", "a", "b"), True, id="test-file"),
        pytest.param(replace(content="x\n" * 201), True, id="over-200-lines"),
        pytest.param(replace(content="x\n" * 200), False, id="200-lines"),
    ],
)
def test_what_counts_as_risky(patch, risky):
    assert is_risky(PatchPlan("a", (patch,))) is risky


def test_in_risky_only_mode_a_small_python_edit_is_approved_by_rule(provider, root):
    verdict = review(provider, root, replace(), mode="risky_only")

    assert verdict.approved and verdict.by_rule
    assert provider.asked == []


def test_in_risky_only_mode_a_risky_plan_still_goes_to_the_model(provider, root):
    new_file = Patch("pkg/new.py", Operation.CREATE_FILE, content='"""New."""\n')

    verdict = review(provider, root, new_file, mode="risky_only")

    assert provider.asked == [Role.CODE_REVIEWER]
    assert not verdict.by_rule


def test_in_always_mode_every_plan_within_the_rules_goes_to_the_model(provider, root):
    verdict = review(provider, root, replace())

    assert provider.asked == [Role.CODE_REVIEWER]
    assert verdict.approved and not verdict.by_rule  # the offline reviewer approves it


def test_the_model_s_rejection_is_the_verdict(provider, root):
    broken = replace(content="2 *")  # leaves the file unparseable: the offline reviewer says no

    verdict = review(provider, root, broken)

    assert provider.asked == [Role.CODE_REVIEWER]
    assert not verdict.approved and not verdict.by_rule and verdict.feedback
