"""Whole cycles against a scripted server that answers like real models do, good and bad.

Every role asks for its schema as a structured output; a server that refuses the mode is
asked again without it and the cycle still commits; an answer that misses a field fails
as ``invalid_plan`` naming it (the brain included: an echo of its input is not "no
objective"); an answer cut at ``max_tokens`` fails as ``llm_error``/``truncated``; a prompt
over the context budget is trimmed and is still a valid request. The target repository is
untouched whenever the cycle did not succeed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from factories import (
    PRICING,
    Reply,
    ScriptedLLMServer,
    answer_by_task,
    chat_reply,
    make_agent,
    openai_config,
    rejects_response_format,
    repo_snapshot,
    task_of,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hephaestus.agent.models import Outcome, Reason

SCHEMA_OF_TASK = {
    "next_objective": "objective",
    "patch_plan": "patch_plan",
    "review": "review",
    "strategy": "strategy",
}


def run_cycle(server: ScriptedLLMServer, repo: Path, **sections: Any):
    exporter = InMemorySpanExporter()
    runner = make_agent(openai_config(server, **sections), repo, span_exporter=exporter)
    try:
        result = runner.run_cycle()
        row = runner.memory.find(result.correlation_id)
    finally:
        runner.close()
    return result, row, [s for s in exporter.get_finished_spans()]


def span_named(spans: list, name: str) -> Any:
    [span] = [s for s in spans if s.name == name]
    return span


def user_payload(request_body: dict[str, Any]) -> dict[str, Any]:
    text = request_body["messages"][-1]["content"]
    return json.loads(text[text.index("```json\n") + 8 : text.rindex("\n```")])


def test_every_role_asks_for_its_own_schema_and_the_cycle_commits(llm_server, sample_repo):
    llm_server._default = answer_by_task()

    result, _, spans = run_cycle(llm_server, sample_repo)

    assert result.outcome is Outcome.SUCCEEDED, result.detail
    asked = [
        (task_of(r.body), r.response_format["json_schema"]["name"]) for r in llm_server.requests
    ]
    assert asked == [(task, SCHEMA_OF_TASK[task]) for task, _ in asked]
    assert [task for task, _ in asked] == ["next_objective", "patch_plan", "review", "strategy"]
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert [s.attributes["hephaestus.answer.valid"] for s in chats] == [True] * 4
    assert {s.attributes["hephaestus.response_format"] for s in chats} == {"json_schema"}


def test_a_server_without_json_schema_support_is_asked_again_and_the_cycle_commits(
    llm_server, sample_repo
):
    llm_server._default = rejects_response_format("json_schema", then=answer_by_task())

    result, _, spans = run_cycle(llm_server, sample_repo)

    assert result.outcome is Outcome.SUCCEEDED, result.detail
    kinds = [r.response_format["type"] for r in llm_server.requests]
    assert kinds == ["json_schema", "json_object", "json_object", "json_object", "json_object"]
    brain_chat = next(s for s in spans if s.name == "chat model-a")
    assert [e.name for e in brain_chat.events] == ["structured_output.fallback"]


def test_a_brain_answer_without_an_objective_is_an_invalid_plan_not_a_decision(
    llm_server, sample_repo
):
    def echo_input(request: dict[str, Any]) -> Reply:  # what a tiny model often does
        payload = user_payload(request)
        return chat_reply(json.dumps({"task": payload["task"], "recent_cycles": []}))

    llm_server._default = answer_by_task(next_objective=echo_input)
    before = repo_snapshot(sample_repo)

    result, row, spans = run_cycle(llm_server, sample_repo)

    assert (result.outcome, result.reason) == (Outcome.FAILED, Reason.INVALID_PLAN)
    assert result.detail == "brain: field objective is missing (objective answer)"
    assert (row["outcome"], row["reason"]) == ("failed", "invalid_plan")
    assert span_named(spans, "invoke_agent brain").attributes["error.type"] == "invalid_answer"
    assert repo_snapshot(sample_repo) == before


@pytest.mark.parametrize(
    ("task", "answer", "detail"),
    [
        (
            "next_objective",
            {"objective": ["add", "docstrings"]},
            "brain: field objective must be a string, got array",
        ),
        (
            "patch_plan",
            {
                "analysis": "x",
                "patches_to_apply": [{"file_path": PRICING, "operation": "REPLACE", "content": ""}],
            },
            "architect: field patches_to_apply[0].block_to_replace is missing",
        ),
        ("review", {"approved": True}, "code_reviewer: field feedback is missing"),
        (
            "strategy",
            {"strategy": "YOLO"},
            "maestro: field strategy must be one of SYNTAX_ONLY, SYNTAX_AND_PYTEST, DISCARD, "
            "got 'YOLO'",
        ),
    ],
)
def test_a_missing_or_mistyped_field_fails_the_cycle_naming_the_field(
    llm_server, sample_repo, task, answer, detail
):
    llm_server._default = answer_by_task(**{task: json.dumps(answer)})
    before = repo_snapshot(sample_repo)

    result, _, _ = run_cycle(llm_server, sample_repo)

    assert (result.outcome, result.reason) == (Outcome.FAILED, Reason.INVALID_PLAN)
    assert result.detail.startswith(detail)
    assert repo_snapshot(sample_repo) == before


def test_an_answer_cut_at_max_tokens_fails_as_truncated_with_its_finish_reason(
    llm_server, sample_repo
):
    cut = chat_reply('{"analysis": "I will', completion_tokens=2048, finish_reason="length")
    llm_server._default = answer_by_task(patch_plan=cut)
    before = repo_snapshot(sample_repo)

    result, _, spans = run_cycle(llm_server, sample_repo)

    assert (result.outcome, result.reason) == (Outcome.FAILED, Reason.LLM_ERROR)
    assert "cut off at the token limit after 2048 tokens" in result.detail
    assert "raise llm.max_tokens" in result.detail
    assert result.output_tokens >= 2048  # what the cut answer cost is still counted
    chats = [s for s in spans if s.name == "chat model-a"]
    assert chats[1].attributes["error.type"] == "truncated"
    assert chats[1].attributes["gen_ai.response.finish_reasons"] == ("length",)
    assert span_named(spans, "invoke_agent architect").attributes["error.type"] == "truncated"
    assert repo_snapshot(sample_repo) == before


def test_a_prompt_over_the_context_budget_is_trimmed_and_still_valid(llm_server, sample_repo):
    llm_server._default = answer_by_task()
    # 4096 - 1024 - 409: about 2,660 tokens, less than the sample's ~7,000-token brain prompt
    llm = {"context_tokens": 4096, "max_tokens": 1024}

    result, _, spans = run_cycle(llm_server, sample_repo, llm=llm)

    assert result.outcome is Outcome.SUCCEEDED, result.detail
    brain = span_named(spans, "invoke_agent brain").attributes
    trimmed = list(brain["hephaestus.prompt.trimmed_files"])
    assert trimmed
    assert brain["hephaestus.prompt.estimated_tokens"] <= brain["hephaestus.prompt.budget_tokens"]
    sent = user_payload(llm_server.requests[0].body)  # still a whole, valid JSON payload
    assert sent["task"] == "next_objective"
    assert set(sent["sources"]).isdisjoint(trimmed)
    assert sent["sources"]
    assert all(r.body["max_tokens"] == 1024 for r in llm_server.requests)
