"""Structured outputs, finish reasons and checked answers, over real HTTP.

Each role's request carries its answer schema as ``response_format`` in the configured mode.
A server that refuses a mode is asked again at once in the next one (json_schema →
json_object → off), and the model keeps that mode: visibly, as a span event and a log line.
An answer cut off at ``max_tokens`` is ``truncated``; an answer that does not fit the schema
is an ``InvalidAnswer`` that names the field; both are on the ``chat`` span.
"""

from __future__ import annotations

from typing import Any

import pytest
from factories import (
    Reply,
    ScriptedLLMServer,
    chat_reply,
    log_events,
    make_config,
    rejects_response_format,
)
from prometheus_client import REGISTRY

from hephaestus.agent.answers import OBJECTIVE, REVIEW, ReviewAnswer
from hephaestus.config import ROLES
from hephaestus.llm.base import InvalidAnswer, LLMError, Message, Role
from hephaestus.llm.client import RoleModels, usage_scope
from hephaestus.llm.openai import OpenAICompatibleProvider
from hephaestus.resilience.retry import RetryPolicy

MESSAGES = [Message("system", "Review."), Message("user", "A plan.")]
APPROVE = '{"approved": true, "feedback": "fine"}'


def provider_for(server: ScriptedLLMServer, **llm: object) -> OpenAICompatibleProvider:
    config = make_config(
        llm={
            "base_url": server.base_url,
            "api_key_env": "",
            "request_timeout": 2.0,
            "local_server": "no",
            "models": {role: ["model-p", "model-f"] for role in ROLES},
            **llm,
        }
    ).llm
    return OpenAICompatibleProvider(config, env={})


def role_models(server: ScriptedLLMServer, instruments: Any = None, **llm: object) -> RoleModels:
    provider = provider_for(server, **llm)
    return RoleModels(
        provider,
        {role: ["model-p", "model-f"] for role in ROLES},
        policy=RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.01, wait_jitter=0),
        instruments=instruments,
    )


def formats(server: ScriptedLLMServer) -> list[str | None]:
    return [(r.response_format or {}).get("type") for r in server.requests]


def retries_so_far() -> float:
    return sum(
        s.value
        for family in REGISTRY.collect()
        for s in family.samples
        if s.name == "stamina_retries_total"
    )


# -- what is sent -----------------------------------------------------------------------------
def test_json_schema_mode_sends_the_roles_schema_strictly_by_name(llm_server):
    llm_server.script([chat_reply(APPROVE)])
    provider = provider_for(llm_server)

    completion = provider.chat(Role.CODE_REVIEWER, "model-p", MESSAGES, schema=REVIEW)
    provider.close()

    assert llm_server.requests[0].response_format == {
        "type": "json_schema",
        "json_schema": {"name": "review", "strict": True, "schema": REVIEW.json_schema()},
    }
    assert completion.response_format == "json_schema"
    assert completion.finish_reason == "stop"


def test_json_object_mode_sends_the_schema_along_for_servers_that_enforce_it(llm_server):
    llm_server.script([chat_reply(APPROVE)])
    provider = provider_for(llm_server, structured_output="json_object")

    provider.chat(Role.CODE_REVIEWER, "model-p", MESSAGES, schema=REVIEW)
    provider.close()

    assert llm_server.requests[0].response_format == {
        "type": "json_object",
        "schema": REVIEW.json_schema(),
    }


@pytest.mark.parametrize(("mode", "schema"), [("off", REVIEW), ("json_schema", None)])
def test_no_response_format_when_off_or_when_no_schema_is_given(llm_server, mode, schema):
    llm_server.script([chat_reply(APPROVE)])
    provider = provider_for(llm_server, structured_output=mode)

    completion = provider.chat(Role.CODE_REVIEWER, "model-p", MESSAGES, schema=schema)
    provider.close()

    assert "response_format" not in llm_server.requests[0].body
    assert completion.response_format == "off"


# -- a server that refuses a mode --------------------------------------------------------------
def test_a_refused_json_schema_is_asked_again_at_once_as_json_object_and_remembered(llm_server):
    llm_server._default = rejects_response_format(
        "json_schema", then=lambda _r: chat_reply(APPROVE)
    )
    provider = provider_for(llm_server)

    first = provider.chat(Role.CODE_REVIEWER, "model-p", MESSAGES, schema=REVIEW)
    second = provider.chat(Role.CODE_REVIEWER, "model-p", MESSAGES, schema=REVIEW)
    other = provider.chat(Role.CODE_REVIEWER, "model-f", MESSAGES, schema=REVIEW)
    provider.close()

    assert formats(llm_server) == [
        "json_schema",  # refused: 400 naming response_format
        "json_object",  # asked again at once
        "json_object",  # model-p remembers
        "json_schema",  # model-f has its own memory
        "json_object",
    ]
    assert (first.response_format, second.response_format) == ("json_object", "json_object")
    assert other.response_format == "json_object"
    assert provider.structured_output("model-p") == "json_object"


def test_a_server_without_structured_outputs_ends_with_plain_text(llm_server):
    llm_server._default = rejects_response_format(
        "json_schema", "json_object", status=422, then=lambda _r: chat_reply(APPROVE)
    )
    provider = provider_for(llm_server)

    completions = [
        provider.chat(Role.CODE_REVIEWER, "model-p", MESSAGES, schema=REVIEW) for _ in range(2)
    ]
    provider.close()

    assert formats(llm_server) == ["json_schema", "json_object", None, None]
    assert [c.response_format for c in completions] == ["off", "off"]


def test_llama_cpp_pythons_500_naming_response_format_is_a_refusal_not_an_outage(llm_server):
    llm_server._default = rejects_response_format(
        "json_schema", status=500, then=lambda _r: chat_reply(APPROVE)
    )
    models = role_models(llm_server)
    before = retries_so_far()

    answer = models.ask(Role.CODE_REVIEWER, MESSAGES, REVIEW)
    models.close()

    assert answer == ReviewAnswer(approved=True, feedback="fine")
    assert formats(llm_server) == ["json_schema", "json_object"]
    assert retries_so_far() == before  # not retried as a server error
    assert models.breakers["model-p"].state.value == "closed"


def test_an_error_that_is_not_about_response_format_is_not_a_refusal(llm_server):
    llm_server.script(
        [Reply(status=400, body={"error": {"message": "maximum context length is 8192 tokens"}})]
    )
    provider = provider_for(llm_server)

    with pytest.raises(LLMError) as info:
        provider.chat(Role.CODE_REVIEWER, "model-p", MESSAGES, schema=REVIEW)
    provider.close()

    assert info.value.error_type == "http_400"
    assert formats(llm_server) == ["json_schema"]
    assert provider.structured_output("model-p") == "json_schema"


def test_the_fallback_is_a_span_event_on_the_chat_span_and_a_log_line(
    llm_server, spans, instruments, json_logs
):
    llm_server._default = rejects_response_format(
        "json_schema", then=lambda _r: chat_reply(APPROVE)
    )
    models = role_models(llm_server, instruments=instruments)

    models.ask(Role.CODE_REVIEWER, MESSAGES, REVIEW)
    models.close()

    [span] = [s for s in spans.get_finished_spans() if s.name == "chat model-p"]
    [event] = [dict(e.attributes) for e in span.events if e.name == "structured_output.fallback"]
    assert event["hephaestus.structured_output.from"] == "json_schema"
    assert event["hephaestus.structured_output.to"] == "json_object"
    assert event["error.type"] == "http_400"
    assert (
        "response_format type 'json_schema' is not supported" in event["hephaestus.error.message"]
    )
    assert span.attributes["hephaestus.response_format"] == "json_object"
    [line] = log_events(
        json_logs, "the model server rejected the structured-output mode; asking again without it"
    )
    assert (line["model"], line["from"], line["to"]) == ("model-p", "json_schema", "json_object")
    assert line["level"] == "warning"


# -- what comes back --------------------------------------------------------------------------
def test_a_valid_answer_is_checked_and_marked_valid_on_the_chat_span(
    llm_server, spans, instruments
):
    llm_server.script([chat_reply(APPROVE)])
    models = role_models(llm_server, instruments=instruments)

    assert models.ask(Role.CODE_REVIEWER, MESSAGES, REVIEW).approved is True
    models.close()

    [span] = [s for s in spans.get_finished_spans() if s.name == "chat model-p"]
    assert span.attributes["hephaestus.answer.valid"] is True
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


@pytest.mark.parametrize(
    ("text", "error_type", "says"),
    [
        ("Looks good to me!", "invalid_json", "no JSON object found"),
        ('{"approved": "yes", "feedback": ""}', "invalid_answer", "field approved must be true"),
        ('{"task": "review", "plan": {}}', "invalid_answer", "field approved is missing"),
    ],
)
def test_an_answer_that_does_not_fit_is_invalid_and_no_fallback_is_asked(
    llm_server, spans, instruments, text, error_type, says
):
    llm_server.script([chat_reply(text, model="model-p")])
    models = role_models(llm_server, instruments=instruments)

    with usage_scope() as usage, pytest.raises(InvalidAnswer) as info:
        models.ask(Role.CODE_REVIEWER, MESSAGES, REVIEW)
    models.close()

    assert info.value.error_type == error_type
    assert says in str(info.value)
    assert llm_server.models_requested() == ["model-p"]
    assert usage.calls == 1  # the tokens were spent all the same
    [span] = [s for s in spans.get_finished_spans() if s.name == "chat model-p"]
    assert span.attributes["hephaestus.answer.valid"] is False
    assert span.attributes["error.type"] == error_type


def test_an_answer_cut_at_max_tokens_is_truncated_and_the_fallback_is_asked(
    llm_server, spans, instruments
):
    llm_server.script(
        [
            chat_reply('{"approved": true, "feedb', completion_tokens=321, finish_reason="length"),
            chat_reply(APPROVE, model="model-f"),
        ]
    )
    models = role_models(llm_server, instruments=instruments)

    with usage_scope() as usage:
        answer = models.ask(Role.CODE_REVIEWER, MESSAGES, REVIEW)
    models.close()

    assert answer.feedback == "fine"
    assert llm_server.models_requested() == ["model-p", "model-f"]
    assert (usage.calls, usage.output_tokens) == (2, 321 + 7)
    truncated = next(s for s in spans.get_finished_spans() if s.name == "chat model-p")
    assert truncated.attributes["error.type"] == "truncated"
    assert truncated.attributes["gen_ai.response.finish_reasons"] == ("length",)
    assert "cut off at the token limit after 321 tokens" in truncated.status.description
    assert "hephaestus.answer.valid" not in truncated.attributes


@pytest.mark.parametrize(
    ("finish_reason", "error_type", "says"),
    [
        ("length", "truncated", "raise llm.max_tokens"),
        ("content_filter", "content_filter", "the server's content filter withheld the answer"),
    ],
)
def test_an_answer_every_model_stopped_short_fails_saying_why(
    llm_server, finish_reason, error_type, says
):
    llm_server._default = lambda _r: chat_reply("{", finish_reason=finish_reason)
    models = role_models(llm_server)

    with pytest.raises(LLMError) as info:
        models.ask(Role.BRAIN, MESSAGES, OBJECTIVE)
    models.close()

    assert info.value.error_type == error_type
    assert says in str(info.value)
    assert llm_server.models_requested() == ["model-p", "model-f"]


def test_a_missing_or_odd_finish_reason_is_kept_as_sent(llm_server):
    llm_server.script(
        [chat_reply(APPROVE, finish_reason=None), chat_reply(APPROVE, finish_reason="eos")]
    )
    provider = provider_for(llm_server)

    reasons = [
        provider.chat(Role.CODE_REVIEWER, "model-p", MESSAGES).finish_reason for _ in range(2)
    ]
    provider.close()

    assert reasons == [None, "eos"]
