"""The context budget: a prompt fits the smallest window of its role's models, with room left
for the answer; what had to go is said on the stage's span and in a log line.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from factories import log_events

from hephaestus.agent.brain import rank_sources
from hephaestus.agent.budget import CHARS_PER_TOKEN, estimate_tokens, fit_messages, prompt_budget
from hephaestus.agent.manifest import FileEntry, Manifest
from hephaestus.agent.models import CycleError, Reason
from hephaestus.agent.prompts import build_messages
from hephaestus.config import ROLES
from hephaestus.llm.base import Message, Role
from hephaestus.llm.client import RoleModels
from hephaestus.llm.offline import OfflineProvider

INSTRUCTIONS = "You are a test role."


def models(windows: dict[str, int] | None = None, max_tokens: int = 512, **roles: list[str]):
    names = {role: roles.get(role, ["m"]) for role in ROLES}
    return RoleModels(
        OfflineProvider(),
        names,
        context_windows={"m": 2048} if windows is None else windows,
        max_tokens=max_tokens,
    )


def payload_of(messages: list[Message]) -> dict[str, Any]:
    user = messages[-1].content
    return json.loads(user[user.index("```json\n") + 8 : user.rindex("\n```")])


def tokens_of(messages: list[Message]) -> int:
    return sum(estimate_tokens(m.content) for m in messages)


def stage_attributes(spans) -> dict[str, Any]:
    [span] = [s for s in spans.get_finished_spans() if s.name.startswith("invoke_agent")]
    return dict(span.attributes)


def fit(
    instruments: Any, role_models: RoleModels, payload: dict[str, Any], **kwargs: Any
) -> list[Message]:
    with instruments.stage_span("objective", "brain"):
        return fit_messages(role_models, Role.BRAIN, INSTRUCTIONS, payload, **kwargs)


FILES = {
    "small.py": "a = 1\n" * 20,  # ~47 tokens, JSON-escaped
    "medium.py": "b = 2\n" * 200,  # ~467 tokens
    "large.py": "c = 3\n" * 400,  # ~934 tokens
}


# -- the estimate and the budget --------------------------------------------------------------
@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("abc", 1), ("abcd", 2), ("x" * 30, 10)])
def test_tokens_are_estimated_as_characters_over_three_rounded_up(text, tokens):
    assert CHARS_PER_TOKEN == 3.0
    assert estimate_tokens(text) == tokens


def test_the_budget_leaves_room_for_the_answer_and_a_margin():
    assert prompt_budget(models({"m": 2048}, max_tokens=512), Role.BRAIN) == 2048 - 512 - 204
    assert prompt_budget(models({"m": 1000}, max_tokens=200), Role.BRAIN) == 1000 - 200 - 100


def test_the_budget_is_that_of_the_roles_smallest_window():
    role_models = models({"big": 32_000, "small": 4096}, brain=["big", "small"])

    assert role_models.context_window(Role.BRAIN) == 4096
    assert prompt_budget(role_models, Role.BRAIN) == 4096 - 512 - 409


def test_models_without_a_known_window_have_no_budget():
    assert prompt_budget(models({}), Role.BRAIN) is None


# -- fitting ----------------------------------------------------------------------------------
def test_a_prompt_that_fits_is_left_whole(spans, instruments):
    payload = {"task": "x", "sources": dict(FILES)}

    messages = fit(instruments, models({"m": 8192}), payload, files_key="sources")

    assert messages == build_messages(INSTRUCTIONS, payload)
    attributes = stage_attributes(spans)
    assert attributes["hephaestus.prompt.estimated_tokens"] == tokens_of(messages)
    assert attributes["hephaestus.prompt.budget_tokens"] == 8192 - 512 - 819
    assert "hephaestus.prompt.trimmed_files" not in attributes


def test_the_least_relevant_files_go_first_until_the_prompt_fits(spans, instruments, json_logs):
    role_models = models({"m": 1800})  # budget 1800 - 512 - 180 = 1108 tokens
    payload = {"task": "x", "sources": dict(FILES)}

    messages = fit(
        instruments,
        role_models,
        payload,
        files_key="sources",
        ranked=["large.py", "small.py", "medium.py"],
    )

    assert list(payload_of(messages)["sources"]) == ["small.py", "large.py"]
    assert tokens_of(messages) <= prompt_budget(role_models, Role.BRAIN)
    attributes = stage_attributes(spans)
    assert attributes["hephaestus.prompt.trimmed_files"] == ("medium.py",)
    assert attributes["hephaestus.prompt.estimated_tokens"] == tokens_of(messages)
    [line] = log_events(json_logs, "prompt trimmed to fit the context window")
    assert (line["role"], line["trimmed_files"]) == ("brain", ["medium.py"])
    assert payload["sources"] == FILES  # the caller's payload is left alone


def test_files_the_ranking_does_not_name_are_the_least_relevant(spans, instruments):
    messages = fit(
        instruments,
        models({"m": 1800}),
        {"sources": dict(FILES)},
        files_key="sources",
        ranked=["medium.py"],
    )

    assert list(payload_of(messages)["sources"]) == ["small.py", "medium.py"]
    assert stage_attributes(spans)["hephaestus.prompt.trimmed_files"] == ("large.py",)


def test_required_files_are_never_trimmed(spans, instruments):
    messages = fit(
        instruments,
        models({"m": 1800}),
        {"files": dict(FILES)},
        files_key="files",
        ranked=["small.py", "medium.py", "large.py"],
        required=["large.py"],
    )

    assert list(payload_of(messages)["files"]) == ["small.py", "large.py"]


def test_after_the_files_the_tail_of_the_manifest_goes(spans, instruments):
    entries = [
        {"path": f"pkg/module_{i:03}.py", "size": 100, "symbols": ["f", "g"]} for i in range(300)
    ]
    payload = {
        "manifest": {"files": entries, "total_files": 300, "truncated": False},
        "sources": dict(FILES),
    }

    messages = fit(instruments, models({"m": 2048}), payload, files_key="sources")

    manifest = payload_of(messages)["manifest"]
    attributes = stage_attributes(spans)
    assert payload_of(messages)["sources"] == {}
    assert manifest["truncated"] is True and manifest["total_files"] == 300
    assert manifest["files"] == entries[: len(manifest["files"])]  # the head is kept
    assert attributes["hephaestus.prompt.trimmed_manifest_entries"] == 300 - len(manifest["files"])
    assert tokens_of(messages) <= attributes["hephaestus.prompt.budget_tokens"]
    assert len(payload["manifest"]["files"]) == 300


def test_a_prompt_that_cannot_fit_fails_the_stage_with_what_to_change(spans, instruments):
    with pytest.raises(CycleError) as info:
        fit(
            instruments,
            models({"m": 1200}),
            {"files": dict(FILES)},
            files_key="files",
            required=["large.py"],
        )

    assert info.value.reason is Reason.LLM_ERROR
    assert info.value.error_type == "context_overflow"
    detail = info.value.detail
    assert detail.startswith("brain: the prompt needs ~")
    assert "(kept in full: large.py)" in detail
    assert "1200-token context window after llm.max_tokens = 512" in detail
    assert "raise llm.context_tokens" in detail


def test_without_a_budget_nothing_is_trimmed(spans, instruments):
    payload = {"sources": {"huge.py": "x = 1\n" * 50_000}}

    messages = fit(instruments, models({}), payload, files_key="sources")

    assert payload_of(messages) == payload
    assert "hephaestus.prompt.budget_tokens" not in stage_attributes(spans)


# -- what the brain keeps ---------------------------------------------------------------------
def test_the_brain_keeps_files_the_recent_cycles_did_not_work_on_and_smaller_ones_first():
    manifest = Manifest(
        files=(FileEntry("a.py", 1, 1, False),),
        total_files=4,
        sources={"a.py": "x" * 10, "b.py": "x" * 300, "c.py": "x" * 20, "d.py": "x" * 5},
        recent_cycles=(
            {"objective": "Add a docstring to f() in a.py", "outcome": "succeeded"},
            {"objective": "Remove the unused import in a.py", "outcome": "failed"},
            {"objective": "Compare to None with 'is' in d.py", "outcome": "succeeded"},
        ),
    )

    assert rank_sources(manifest) == ["c.py", "b.py", "d.py", "a.py"]
