"""The brain: ``generate_next_objective`` proposes one small, checkable objective, or none.

The model behind it is the real offline engine, or a provider that answers what the test
scripts; either way the answer goes through the real router, prompt and schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from factories import make_logger

from hephaestus.agent import generate_next_objective
from hephaestus.agent.manifest import Manifest
from hephaestus.agent.models import CycleError, Objective, Reason
from hephaestus.config import ROLES
from hephaestus.llm.base import Completion, Message, Role, llm_error
from hephaestus.llm.client import RoleModels
from hephaestus.llm.jsontext import extract_json
from hephaestus.llm.offline import OfflineProvider
from hephaestus.resilience import RetryPolicy

SOURCES = {"pkg/mod.py": "import os\n\n\ndef f(x):\n    return x == None\n"}
CLEAN = {"pkg/clean.py": '"""Clean."""\n\n\ndef f(x):\n    """F."""\n    return x\n'}


class Scripted:
    """A provider that answers every prompt with ``answer`` and keeps the payloads it got."""

    name = "scripted"
    server_address = None
    server_port = None

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.payloads: list[dict[str, Any]] = []

    def chat(self, role: Role, model: str, messages: Sequence[Message], *args: Any, **kw: Any):
        self.payloads.append(extract_json(messages[-1].content))
        text = json.dumps(self.answer)
        return Completion(text, self.name, model, model, 10, 10, "stop")

    def close(self) -> None:
        pass


def models(provider: Any) -> RoleModels:
    return RoleModels(provider, {r: ["m"] for r in ROLES}, policy=RetryPolicy(attempts=1))


def manifest(sources: dict[str, str], blocked: tuple[str, ...] = ()) -> Manifest:
    return Manifest(files=(), total_files=len(sources), sources=sources, blocked_objectives=blocked)


def test_the_objective_is_one_the_model_found_in_the_sources():
    objective = generate_next_objective(models(OfflineProvider()), manifest(SOURCES))

    assert objective is not None
    assert objective.file_path == "pkg/mod.py"
    assert objective.kind in {"module_docstring", "function_docstring", "unused_import",
                              "none_comparison"}  # fmt: skip
    assert objective.source == "brain"


def test_nothing_worth_doing_is_none_not_an_error():
    assert generate_next_objective(models(OfflineProvider()), manifest(CLEAN)) is None


@pytest.mark.parametrize("text", [None, "", "   \n "])
def test_an_empty_objective_from_the_model_is_none(text):
    provider = Scripted({"objective": text, "rationale": "all good"})

    assert generate_next_objective(models(provider), manifest(SOURCES)) is None


def test_the_model_s_text_is_normalised_and_missing_fields_get_defaults():
    provider = Scripted({"objective": "  Add a\n docstring   to f ", "file_path": "", "kind": ""})

    objective = generate_next_objective(models(provider), manifest(SOURCES))

    assert objective == Objective(text="Add a docstring to f", kind="freeform")
    assert objective.file_path is None and objective.symbol is None


def test_an_objective_proposed_again_after_repeated_failures_is_refused():
    blocked = "Add a docstring to f"
    provider = Scripted({"objective": blocked, "kind": "function_docstring"})

    with pytest.raises(CycleError) as info:
        generate_next_objective(models(provider), manifest(SOURCES, blocked=(blocked,)))

    assert info.value.reason is Reason.REPEATED_OBJECTIVE
    assert provider.payloads[0]["blocked_objectives"] == [blocked]  # the model was told


def test_the_model_hears_which_objective_was_just_worked_on():
    provider = Scripted({"objective": "Something else"})
    previous = Objective(text="Add a docstring to f", kind="function_docstring")

    generate_next_objective(models(provider), manifest(SOURCES), current_objective=previous)

    [payload] = provider.payloads
    assert payload["task"] == "next_objective"
    assert payload["current_objective"]["objective"] == "Add a docstring to f"
    assert payload["sources"] == SOURCES


def test_the_choice_is_logged_with_its_fields_on_the_given_logger():
    logger, records = make_logger()
    provider = Scripted({"objective": "Add a docstring to f", "kind": "function_docstring"})

    generate_next_objective(models(provider), manifest(SOURCES), logger=logger)

    [record] = [r for r in records.records if r.getMessage() == "objective chosen"]
    assert (record.objective, record.kind) == ("Add a docstring to f", "function_docstring")


def test_a_failing_model_ends_the_cycle_with_llm_error():
    class Down(Scripted):
        def chat(self, *args: Any, **kwargs: Any):
            raise llm_error("HTTP 401", error_type="http_401")

    with pytest.raises(CycleError) as info:
        generate_next_objective(models(Down({})), manifest(SOURCES))

    assert info.value.reason is Reason.LLM_ERROR
