"""The offline provider answers every role the way a model would, deterministically.

It reads the JSON payload of the real agent prompt, and its answers are JSON text that goes
through the same parsing as model output. Over the bundled sample project, every objective it
proposes leads to a plan that applies cleanly.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import Any

import pytest

from hephaestus.agent.models import CycleError, Reason
from hephaestus.agent.patches import apply_plan, parse_plan
from hephaestus.agent.prompts import build_messages
from hephaestus.llm import opportunities
from hephaestus.llm.base import LLMError, Message, Role
from hephaestus.llm.jsontext import extract_json
from hephaestus.llm.offline import OFFLINE_MODEL, OfflineProvider
from hephaestus.llm.opportunities import find_opportunities

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory"

MANY = {
    f"pkg/mod{i}.py": (
        "import os\nimport json\n\n\n"
        f"def work{i}(value):\n"
        "    try:\n"
        "        return value == None\n"
        "    except:\n"
        "        return os.sep\n"
    )
    for i in range(4)
}
CLEAN = {"pkg/clean.py": '"""Clean."""\n\n\ndef f(x):\n    """F."""\n    return x\n'}
STRATEGIES = {"SYNTAX_ONLY": ["syntax"], "SYNTAX_AND_PYTEST": ["syntax", "pytest"], "DISCARD": []}


def ask(role: Role, payload: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Send ``payload`` in a real agent prompt and decode the answer like model output."""
    completion = OfflineProvider(seed).chat(
        role, "any-model", build_messages("instructions", payload)
    )
    return extract_json(completion.text)


def objective_for(
    sources: dict[str, str], seed: int = 0, blocked: list[str] | None = None
) -> dict[str, Any]:
    return ask(
        Role.BRAIN,
        {"task": "next_objective", "sources": sources, "blocked_objectives": blocked or []},
        seed,
    )


def plan_for(objective: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    return ask(Role.ARCHITECT, {"task": "patch_plan", "objective": objective, "files": files})


def review(patches: list[dict[str, Any]], files: dict[str, str]) -> dict[str, Any]:
    return ask(
        Role.CODE_REVIEWER,
        {"task": "review", "plan": {"patches_to_apply": patches}, "files": files},
    )


def strategy(
    has_tests: bool,
    strategies: dict[str, list[str]] = STRATEGIES,
    default: str = "SYNTAX_AND_PYTEST",
) -> dict[str, Any]:
    return ask(
        Role.MAESTRO,
        {
            "task": "strategy",
            "has_tests": has_tests,
            "default_strategy": default,
            "strategies": strategies,
        },
    )


# -- brain ------------------------------------------------------------------------------------
def test_same_seed_and_payload_give_the_same_answer():
    messages = build_messages("x", {"task": "next_objective", "sources": MANY})

    answers = {OfflineProvider(3).chat(Role.BRAIN, "m", messages).text for _ in range(5)}

    assert len(answers) == 1


def test_source_order_in_the_payload_does_not_matter():
    reordered = dict(reversed(list(MANY.items())))

    assert objective_for(MANY, seed=5) == objective_for(reordered, seed=5)


def test_different_seeds_choose_different_objectives():
    chosen = {objective_for(MANY, seed=seed)["objective"] for seed in range(12)}

    assert len(chosen) > 1


def test_objective_is_one_of_the_real_opportunities():
    opportunities = {
        (o.objective, o.kind, o.file_path, o.symbol)
        for path, text in MANY.items()
        for o in find_opportunities(path, text)
    }

    for seed in range(6):
        answer = objective_for(MANY, seed=seed)
        key = (answer["objective"], answer["kind"], answer["file_path"], answer["symbol"])
        assert key in opportunities
        assert answer["rationale"]


def test_blocked_objectives_are_never_chosen():
    everything = [
        o.objective for path, text in MANY.items() for o in find_opportunities(path, text)
    ]
    blocked, allowed = everything[:-3], everything[-3:]

    chosen = {objective_for(MANY, seed=seed, blocked=blocked)["objective"] for seed in range(15)}

    assert chosen <= set(allowed)


@pytest.mark.parametrize(
    "sources",
    [
        pytest.param({}, id="no-sources"),
        pytest.param(CLEAN, id="nothing-to-improve"),
        pytest.param({"pkg/broken.py": "def (:\n"}, id="only-broken"),
    ],
)
def test_objective_is_null_when_nothing_is_left(sources):
    answer = objective_for(sources)

    assert answer["objective"] is None
    assert answer["rationale"]


def test_objective_is_null_when_everything_is_blocked():
    everything = [
        o.objective for path, text in MANY.items() for o in find_opportunities(path, text)
    ]

    assert objective_for(MANY, blocked=everything)["objective"] is None


def marked_as_tests(*paths: str) -> dict[str, Any]:
    """The prompt's manifest, marking ``paths`` as the project's tests."""
    return {"files": [{"path": p, "test": True} for p in paths]}


def test_files_the_manifest_marks_as_tests_are_never_objectives():
    payload = {
        "task": "next_objective",
        "sources": {"pkg/mod0.py": MANY["pkg/mod0.py"]},
        "manifest": marked_as_tests("pkg/mod0.py"),
    }

    assert ask(Role.BRAIN, payload)["objective"] is None
    del payload["manifest"]
    assert ask(Role.BRAIN, payload)["objective"] is not None


def test_architect_plans_nothing_in_a_file_the_manifest_marks_as_a_test():
    objective = objective_for({"pkg/mod0.py": MANY["pkg/mod0.py"]})
    payload = {
        "task": "patch_plan",
        "objective": objective,
        "files": {"pkg/mod0.py": MANY["pkg/mod0.py"]},
        "manifest": marked_as_tests("pkg/mod0.py"),
    }

    assert ask(Role.ARCHITECT, payload)["patches_to_apply"] == []


# -- architect --------------------------------------------------------------------------------
@pytest.mark.parametrize("index", range(5))
def test_architect_plan_realises_the_named_objective(tmp_path, index):
    path = "pkg/mod0.py"
    opportunity = find_opportunities(path, MANY[path])[index]
    objective = {
        "objective": opportunity.objective,
        "kind": opportunity.kind,
        "file_path": path,
        "symbol": opportunity.symbol,
    }

    plan = plan_for(objective, {path: MANY[path]})

    assert plan["patches_to_apply"] == opportunity.patches
    assert plan["analysis"]
    (tmp_path / "pkg").mkdir()
    (tmp_path / path).write_text(MANY[path])
    apply_plan(parse_plan(plan), tmp_path)
    after = (tmp_path / path).read_text()
    ast.parse(after)
    kinds_before = [o.kind for o in find_opportunities(path, MANY[path])]
    kinds_after = [o.kind for o in find_opportunities(path, after)]
    assert kinds_after.count(opportunity.kind) == kinds_before.count(opportunity.kind) - 1


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Please remove the unused import in pkg/mod1.py", "unused_import"),
        ("Replace the bare except in pkg/mod1.py with something narrower", "bare_except"),
        ("Fix the None comparison in PKG/MOD1.PY", "none_comparison"),
        ("Write a docstring for pkg/mod1.py", "module_docstring"),
    ],
)
def test_architect_understands_free_text_naming_a_file_and_kind(text, kind):
    plan = plan_for({"objective": text, "kind": "freeform"}, MANY)

    first_of_kind = next(
        o for o in find_opportunities("pkg/mod1.py", MANY["pkg/mod1.py"]) if o.kind == kind
    )
    assert plan["patches_to_apply"] == first_of_kind.patches


@pytest.mark.parametrize(
    "objective",
    [
        pytest.param(
            {"objective": "Rewrite everything in Rust", "kind": "freeform"}, id="unknown-free-text"
        ),
        pytest.param(
            {
                "objective": "Add a docstring",
                "kind": "function_docstring",
                "file_path": "pkg/mod0.py",
                "symbol": "no_such_function",
            },
            id="unknown-symbol",
        ),
        pytest.param(
            {"objective": "Remove the unused import in pkg/elsewhere.py"}, id="file-not-shown"
        ),
        pytest.param({}, id="no-objective"),
    ],
)
def test_architect_returns_an_empty_plan_for_an_unknown_objective(objective):
    plan = plan_for(objective, {"pkg/mod0.py": MANY["pkg/mod0.py"]})

    assert plan["patches_to_apply"] == []
    assert plan["analysis"]
    with pytest.raises(CycleError) as info:
        parse_plan(plan)
    assert info.value.reason is Reason.INVALID_PLAN


# -- code reviewer ----------------------------------------------------------------------------
SOURCE = '"""M."""\n\n\ndef f(x):\n    """F."""\n    y = 1\n    y = 1\n    return x\n'
FILES = {"pkg/mod.py": SOURCE}


def test_reviewer_approves_a_small_valid_change():
    answer = review(
        [
            {
                "file_path": "pkg/mod.py",
                "operation": "REPLACE",
                "block_to_replace": "    return x\n",
                "content": "    return x + 1\n",
            }
        ],
        FILES,
    )

    assert answer["approved"] is True
    assert answer["feedback"]


@pytest.mark.parametrize(
    ("patch", "complaint"),
    [
        pytest.param(
            {
                "file_path": "pkg/mod.py",
                "operation": "REPLACE",
                "block_to_replace": "    y = 1\n",
                "content": "    y = 2\n",
            },
            "exactly once",
            id="block-occurs-twice",
        ),
        pytest.param(
            {
                "file_path": "pkg/mod.py",
                "operation": "DELETE_BLOCK",
                "block_to_delete": "    z = 3\n",
            },
            "exactly once",
            id="block-missing",
        ),
        pytest.param(
            {
                "file_path": "pkg/mod.py",
                "operation": "REPLACE",
                "block_to_replace": "    return x\n",
                "content": "    return (x\n",
            },
            "would not parse",
            id="replacement-does-not-parse",
        ),
        pytest.param(
            {
                "file_path": "pkg/mod.py",
                "operation": "DELETE_BLOCK",
                "block_to_delete": '    """F."""\n    y = 1\n    y = 1\n    return x\n',
            },
            "would not parse",
            id="deletion-leaves-an-empty-body",
        ),
        pytest.param(
            {
                "file_path": "pkg/other.py",
                "operation": "REPLACE",
                "block_to_replace": "a",
                "content": "b",
            },
            "not shown",
            id="file-not-shown",
        ),
    ],
)
def test_reviewer_rejects_a_bad_patch(patch, complaint):
    answer = review([patch], FILES)

    assert answer["approved"] is False
    assert complaint in answer["feedback"]
    assert patch["file_path"] in answer["feedback"]


def test_reviewer_rejects_when_any_patch_is_bad():
    good = {
        "file_path": "pkg/mod.py",
        "operation": "REPLACE",
        "block_to_replace": "    return x\n",
        "content": "    return -x\n",
    }
    bad = {
        "file_path": "pkg/mod.py",
        "operation": "REPLACE",
        "block_to_replace": "    y = 1\n",
        "content": "    y = 2\n",
    }

    assert review([good, bad], FILES)["approved"] is False


def test_reviewer_accepts_a_new_file_it_was_not_shown():
    answer = review(
        [{"file_path": "pkg/new.py", "operation": "CREATE_FILE", "content": "X = 1\n"}], FILES
    )

    assert answer["approved"] is True


def test_reviewer_does_not_parse_non_python_files():
    files = {"README.md": "# Title\n\nText (\n"}

    answer = review(
        [
            {
                "file_path": "README.md",
                "operation": "REPLACE",
                "block_to_replace": "Text (",
                "content": "Text (((",
            }
        ],
        files,
    )

    assert answer["approved"] is True


# -- maestro ----------------------------------------------------------------------------------
def test_maestro_picks_pytest_when_the_project_has_tests():
    assert strategy(has_tests=True)["strategy"] == "SYNTAX_AND_PYTEST"


def test_maestro_picks_syntax_only_without_tests():
    assert strategy(has_tests=False)["strategy"] == "SYNTAX_ONLY"


def test_maestro_matches_steps_regardless_of_their_order():
    strategies = {"DISCARD": [], "CHECK_ALL": ["pytest", "syntax"], "FAST": ["syntax"]}

    assert strategy(True, strategies, default="FAST")["strategy"] == "CHECK_ALL"


@pytest.mark.parametrize(
    ("has_tests", "strategies"),
    [
        pytest.param(
            True, {"DISCARD": [], "FAST": ["syntax"], "CUSTOM": ["pytest"]}, id="no-pytest-strategy"
        ),
        pytest.param(
            False, {"DISCARD": [], "FULL": ["syntax", "pytest"]}, id="no-syntax-only-strategy"
        ),
        pytest.param(False, {}, id="no-strategies"),
    ],
)
def test_maestro_falls_back_to_the_default_strategy(has_tests, strategies):
    answer = strategy(has_tests, strategies, default="MY_DEFAULT")

    assert answer["strategy"] == "MY_DEFAULT"
    assert answer["rationale"]


# -- the provider itself ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([Message("system", "s"), Message("user", "no JSON here")], id="prose"),
        pytest.param([Message("system", '{"task": "x"}')], id="no-user-message"),
        pytest.param([], id="no-messages"),
        pytest.param([Message("user", "[1, 2]")], id="array-payload"),
    ],
)
def test_prompt_without_a_json_payload_is_an_invalid_request(messages):
    with pytest.raises(LLMError) as info:
        OfflineProvider().chat(Role.BRAIN, "m", messages)

    assert info.value.error_type == "invalid_request"
    assert not info.value.retryable


def test_last_user_message_carries_the_payload():
    messages = [
        Message(
            "user",
            '{"task": "strategy", "has_tests": true, '
            '"strategies": {"A": ["syntax"]}, "default_strategy": "A"}',
        ),
        Message("assistant", "thinking"),
        *build_messages(
            "x",
            {
                "task": "strategy",
                "has_tests": True,
                "strategies": STRATEGIES,
                "default_strategy": "DISCARD",
            },
        ),
    ]

    completion = OfflineProvider().chat(Role.MAESTRO, "m", messages)

    assert extract_json(completion.text)["strategy"] == "SYNTAX_AND_PYTEST"


@pytest.mark.parametrize("role", list(Role))
def test_completion_reports_model_and_positive_token_counts(role):
    completion = OfflineProvider().chat(role, "requested/model", [Message("user", "{}")])

    assert completion.provider == "offline"
    assert completion.request_model == "requested/model"
    assert completion.response_model == OFFLINE_MODEL
    assert completion.input_tokens > 0
    assert completion.output_tokens > 0
    assert isinstance(extract_json(completion.text), dict)


def test_token_counts_grow_with_the_prompt():
    small = OfflineProvider().chat(Role.BRAIN, "m", build_messages("x", {"sources": {}}))
    large = OfflineProvider().chat(Role.BRAIN, "m", build_messages("x", {"sources": MANY}))

    assert large.input_tokens > small.input_tokens


def test_close_is_harmless():
    provider = OfflineProvider()
    provider.close()

    assert provider.chat(Role.MAESTRO, "m", [Message("user", "{}")]).text


# -- the whole pipeline over the bundled sample -----------------------------------------------
def sample_sources() -> dict[str, str]:
    return {
        p.relative_to(SAMPLE).as_posix(): p.read_text()
        for p in sorted(SAMPLE.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def test_every_sample_objective_becomes_a_plan_that_applies_cleanly(tmp_path):
    sources = sample_sources()
    expected = {
        o.objective for path, text in sources.items() for o in find_opportunities(path, text)
    }
    assert expected, "the sample project should offer improvements"

    done: list[str] = []
    while (objective := objective_for(sources, seed=1, blocked=done))["objective"] is not None:
        path = objective["file_path"]
        plan = plan_for(objective, {path: sources[path]})
        verdict = review(plan["patches_to_apply"], {path: sources[path]})
        copy = tmp_path / f"copy{len(done)}"
        shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__"))

        touched = apply_plan(parse_plan(plan), copy)

        assert verdict["approved"] is True, verdict
        assert touched == (path,)
        after = (copy / path).read_text()
        assert after != sources[path]
        ast.parse(after, filename=path)
        done.append(objective["objective"])
        assert len(done) <= len(expected), "the brain proposed an objective twice"

    assert set(done) == expected
    chosen = strategy(has_tests=any(p.startswith("tests/") for p in sources))
    assert chosen["strategy"] == "SYNTAX_AND_PYTEST"


def test_the_offline_model_remembers_one_version_of_each_file():
    path = "pkg/remembered.py"
    for value in range(5):  # five cycles, each changing the file
        source = f"def f{value}():\n    return {value}\n"
        first = find_opportunities(path, source)
        assert find_opportunities(path, source) == first  # the same answer, remembered

    assert opportunities._LATEST[path][0] == source  # only the latest version is kept
