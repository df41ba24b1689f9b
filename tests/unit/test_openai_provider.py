"""The OpenAI-compatible provider and the role router, against a real local HTTP server.

One ``chat`` is one HTTP request: its errors become :class:`LLMError` with a low-cardinality
``error_type`` and an honest ``retryable`` flag. :class:`RoleModels` asks a role's models in
order and :func:`usage_scope` counts what the successful answers cost. The prompt layer turns
a failed call into ``llm_error`` and an answer without JSON into ``invalid_plan``.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from factories import Reply, ScriptedLLMServer, chat_reply, make_config

from hephaestus import __version__
from hephaestus.agent.answers import OBJECTIVE, PATCH_PLAN, REVIEW, ObjectiveAnswer
from hephaestus.agent.models import CycleError, Reason
from hephaestus.agent.prompts import ask_json, build_messages
from hephaestus.config import ROLES, ConfigError, LLMConfig
from hephaestus.llm.base import LLMError, Message, Role
from hephaestus.llm.client import RoleModels, usage_scope
from hephaestus.llm.errorbody import server_message
from hephaestus.llm.openai import OpenAICompatibleProvider, retry_after_seconds
from hephaestus.resilience.retry import RetryPolicy
from hephaestus.resilience.timeouts import Deadline, deadline_scope

KEY_ENV = "HEPHAESTUS_TEST_API_KEY"
KEY = "sk-test-0123456789"
MESSAGES = [Message("system", "You are terse."), Message("user", "Say hi.")]


def llm_config(base_url: str, **overrides: object) -> LLMConfig:
    """An llm section pointing at ``base_url``, with the test key variable and short timeouts."""
    values = {
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "request_timeout": 2.0,
        "temperature": 0.5,
        "max_tokens": 321,
        "models": {role: ["primary-model", "fallback-model"] for role in ROLES},
        "local_server": "no",  # the scripted server on 127.0.0.1 stands in for a remote API
    }
    return make_config(llm={**values, **overrides}).llm


def make_provider(base_url: str, **overrides: object) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(llm_config(base_url, **overrides), env={KEY_ENV: KEY})


def lower_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def chat_error(server: ScriptedLLMServer, reply: Reply, **overrides: object) -> LLMError:
    """The LLMError a single scripted ``reply`` turns into."""
    server.script([reply])
    provider = make_provider(server.base_url, **overrides)
    try:
        with pytest.raises(LLMError) as info:
            provider.chat(Role.BRAIN, "primary-model", MESSAGES)
    finally:
        provider.close()
    return info.value


@pytest.fixture(scope="module")
def shared_server():
    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture
def llm_server(shared_server):
    """conftest's ``llm_server``, started once per module: stopping one takes 0.5 s."""
    with shared_server._lock:
        shared_server._script.clear()
    shared_server.requests.clear()
    return shared_server


@pytest.fixture
def provider(llm_server):
    p = make_provider(llm_server.base_url)
    yield p
    p.close()


# -- a successful call ------------------------------------------------------------------------
def test_success_returns_text_models_and_token_usage(llm_server, provider):
    llm_server.script(
        [chat_reply("hello", model="served-model-v2", prompt_tokens=23, completion_tokens=5)]
    )

    completion = provider.chat(Role.ARCHITECT, "primary-model", MESSAGES)

    assert completion.text == "hello"
    assert completion.provider == "openai"
    assert completion.request_model == "primary-model"
    assert completion.response_model == "served-model-v2"
    assert (completion.input_tokens, completion.output_tokens) == (23, 5)


def test_request_posts_model_messages_and_sampling_to_chat_completions(llm_server, provider):
    llm_server.script([chat_reply("ok")])

    provider.chat(Role.BRAIN, "primary-model", MESSAGES)

    [request] = llm_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body == {
        "model": "primary-model",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hi."},
        ],
        "temperature": 0.5,
        "max_tokens": 321,
    }
    assert lower_headers(request.headers)["user-agent"] == f"hephaestus/{__version__}"


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, (0, 0)),
        ({}, (0, 0)),
        ({"prompt_tokens": 3}, (3, 0)),
        ({"prompt_tokens": -1, "completion_tokens": "9"}, (0, 0)),
        ({"prompt_tokens": True, "completion_tokens": 2.5}, (0, 0)),
    ],
)
def test_missing_or_bogus_usage_counts_as_zero_tokens(llm_server, provider, usage, expected):
    reply = chat_reply("ok")
    reply.body["usage"] = usage
    llm_server.script([reply])

    completion = provider.chat(Role.BRAIN, "primary-model", MESSAGES)

    assert (completion.input_tokens, completion.output_tokens) == expected


def test_response_without_model_name_reports_the_requested_model(llm_server, provider):
    reply = chat_reply("ok")
    del reply.body["model"]
    llm_server.script([reply])

    assert provider.chat(Role.BRAIN, "primary-model", MESSAGES).response_model == "primary-model"


@pytest.mark.parametrize(
    ("base_url", "address", "port"),
    [
        ("https://openrouter.ai/api/v1", "openrouter.ai", 443),
        ("http://localhost/v1", "localhost", 80),
        ("http://127.0.0.1:11434/v1", "127.0.0.1", 11434),
    ],
)
def test_server_address_and_port_come_from_the_base_url(base_url, address, port):
    provider = make_provider(base_url)

    assert (provider.server_address, provider.server_port) == (address, port)
    provider.close()


# -- authentication ---------------------------------------------------------------------------
def test_api_key_is_sent_as_bearer_token_from_the_named_variable(llm_server, provider):
    llm_server.script([chat_reply("ok")])

    provider.chat(Role.BRAIN, "primary-model", MESSAGES)

    assert lower_headers(llm_server.requests[0].headers)["authorization"] == f"Bearer {KEY}"


def test_no_authorization_header_when_api_key_env_is_empty(llm_server):
    llm_server.script([chat_reply("ok")])
    provider = OpenAICompatibleProvider(llm_config(llm_server.base_url, api_key_env=""), env={})

    provider.chat(Role.BRAIN, "primary-model", MESSAGES)
    provider.close()

    assert "authorization" not in lower_headers(llm_server.requests[0].headers)


@pytest.mark.parametrize("env", [{}, {KEY_ENV: ""}])
def test_missing_api_key_is_a_config_error_naming_the_variable(env):
    with pytest.raises(ConfigError, match=rf"\${KEY_ENV} \(llm.api_key_env\)"):
        OpenAICompatibleProvider(llm_config("http://127.0.0.1:1/v1"), env=env)


def test_api_key_is_read_from_the_process_environment_by_default(llm_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-from-environ")
    llm_server.script([chat_reply("ok")])
    provider = OpenAICompatibleProvider(llm_config(llm_server.base_url))

    provider.chat(Role.BRAIN, "primary-model", MESSAGES)
    provider.close()

    headers = lower_headers(llm_server.requests[0].headers)
    assert headers["authorization"] == "Bearer sk-from-environ"


def test_errors_never_carry_the_api_key(llm_server):
    error = chat_error(llm_server, Reply(status=401, body={"error": f"bad key {KEY}"}))

    assert KEY not in str(error)
    assert KEY not in repr(error.args)
    assert str(error) == "primary-model: HTTP 401 from /v1/chat/completions: bad key ****"


def test_an_error_body_echoing_the_authorization_header_is_masked(llm_server):
    body = {"error": {"message": f"rejected header Authorization: Bearer {KEY}x; sk-abcdef123456"}}

    error = chat_error(llm_server, Reply(status=403, body=body))

    assert "sk-" not in str(error)
    assert str(error).endswith("rejected header Authorization: Bearer **** ****")


# -- HTTP errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (502, True), (503, True), (429, True), (400, False), (401, False), (404, False)],
)
def test_http_errors_are_typed_by_status_and_only_transient_ones_retry(
    llm_server, status, retryable
):
    error = chat_error(llm_server, Reply(status=status, body={"error": "nope"}))

    assert error.error_type == f"http_{status}"
    assert error.retryable is retryable
    assert error.retry_after is None
    assert f"HTTP {status}" in str(error)


def test_429_carries_retry_after_in_seconds(llm_server):
    error = chat_error(llm_server, Reply(status=429, body={}, headers={"Retry-After": "7"}))

    assert error.retry_after == 7.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-5", 0.0),
        ("soon", None),
        ("Mon, 99 Foo 2024 25:61:00 GMT", None),
    ],
)
def test_retry_after_seconds_parses_numbers_and_rejects_garbage(value, expected):
    assert retry_after_seconds(value) == expected


def test_retry_after_seconds_parses_an_http_date():
    before = datetime.now(UTC)
    in_30s = format_datetime(before + timedelta(seconds=30), usegmt=True)  # whole seconds

    seconds = retry_after_seconds(in_30s)
    elapsed = (datetime.now(UTC) - before).total_seconds()

    assert seconds is not None and 29 - elapsed <= seconds <= 30


def test_retry_after_seconds_clamps_a_past_http_date_to_zero():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_an_error_carries_the_servers_message(llm_server):
    body = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, you "
            "requested 9000 tokens.",
            "type": "invalid_request_error",
        }
    }

    error = chat_error(llm_server, Reply(status=400, body=body))

    assert str(error) == (
        "primary-model: HTTP 400 from /v1/chat/completions: This model's maximum context "
        "length is 8192 tokens. However, you requested 9000 tokens."
    )


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(status=404, body={"error": "model 'x' not found"}), "model 'x' not found"),
        (Reply(status=400, body={"message": "bad\n  input"}), "bad input"),
        (
            Reply(
                status=422,
                body={"detail": [{"loc": ["body", "max_tokens"], "msg": "must be positive"}]},
            ),
            "body.max_tokens: must be positive",
        ),
        (Reply(status=502, raw=b"<html>Bad Gateway</html>"), "<html>Bad Gateway</html>"),
        (Reply(status=500, body={"error": {"code": 7}}), '{"code": 7}'),
        (Reply(status=503, raw=b""), None),
    ],
    ids=["error-string", "message", "fastapi-detail", "plain-text", "no-message", "empty"],
)
def test_the_servers_message_is_found_in_the_usual_places(llm_server, reply, message):
    error = chat_error(llm_server, reply)

    prefix = f"primary-model: HTTP {reply.status} from /v1/chat/completions"
    assert str(error) == (f"{prefix}: {message}" if message else prefix)


def test_the_servers_message_is_cut_to_300_characters(llm_server):
    error = chat_error(llm_server, Reply(status=400, body={"error": "x" * 5000}))

    detail = str(error).split(": ", 2)[2]
    assert len(detail) == 300
    assert detail.endswith("…")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"detail": {"message": "nested"}}', "nested"),
        (b'{"detail": 5}', "5"),
        (b'{"status": "down"}', '{"status": "down"}'),
        (b'"just a string"', "just a string"),
        (b"\xff\xfe not utf-8", "\ufffd\ufffd not utf-8"),
    ],
)
def test_server_message_reads_what_servers_send(body, message):
    assert server_message(body) == message


def test_a_huge_or_deeply_nested_error_body_is_read_as_text(llm_server):
    nested = b"[" * 50_000 + b"]" * 50_000

    error = chat_error(llm_server, Reply(status=400, raw=nested))

    assert error.error_type == "http_400"
    assert len(str(error)) < 400


# -- transport failures and bad bodies ---------------------------------------------------------
def test_hanging_server_times_out_quickly_and_retryably(llm_server):
    answered = llm_server.answered

    error = chat_error(llm_server, Reply(delay=60, body={}), request_timeout=0.3)

    assert llm_server.answered == answered  # the client gave up while the server held it
    assert error.error_type == "timeout"
    assert error.retryable is True


# -- a local server keeps computing a request that timed out ---------------------------------
@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("localhost", True),
        ("[::1]", True),
        ("10.0.0.7", False),
        ("openrouter.ai", False),
    ],
)
def test_auto_treats_a_loopback_address_as_a_local_server(host, local):
    provider = make_provider(f"http://{host}:8080/v1", local_server="auto")

    assert provider.local is local
    provider.close()


@pytest.mark.parametrize(("setting", "local"), [("yes", True), ("no", False)])
def test_local_server_can_be_set_either_way(setting, local):
    provider = make_provider("http://192.168.1.20:8080/v1", local_server=setting)

    assert provider.local is local
    provider.close()


def local_provider(server: ScriptedLLMServer, waits: list[float]) -> OpenAICompatibleProvider:
    config = llm_config(server.base_url, local_server="yes", request_timeout=0.3)
    return OpenAICompatibleProvider(config, env={KEY_ENV: KEY}, sleep=waits.append)


def test_a_timeout_against_a_local_server_is_not_retryable_and_says_why(llm_server):
    llm_server.script([Reply(delay=1.0, body={})])
    provider = local_provider(llm_server, [])

    with pytest.raises(LLMError) as info:
        provider.chat(Role.BRAIN, "primary-model", MESSAGES)
    provider.close()

    assert info.value.error_type == "timeout"
    assert info.value.retryable is False
    assert "is a local server that is still computing it, so it is not retried" in str(info.value)


def test_the_next_request_to_a_busy_local_server_waits_for_it_first(llm_server):
    llm_server.script([Reply(delay=1.0, body={}), chat_reply("done")])
    waits: list[float] = []
    provider = local_provider(llm_server, waits)
    with pytest.raises(LLMError):
        provider.chat(Role.BRAIN, "primary-model", MESSAGES)

    completion = provider.chat(Role.BRAIN, "primary-model", MESSAGES, timeout=0.3)
    provider.close()

    assert completion.text == "done"  # the wait did not shorten the request's own timeout
    [wait] = waits
    assert 0 < wait <= 0.3  # what was left of llm.request_timeout after the timeout
    assert len(llm_server.requests) == 2


def test_without_time_to_wait_for_a_busy_local_server_no_request_is_sent(llm_server):
    llm_server.script([Reply(delay=1.0, body={})])
    waits: list[float] = []
    provider = local_provider(llm_server, waits)
    with pytest.raises(LLMError):
        provider.chat(Role.BRAIN, "primary-model", MESSAGES)

    with (
        deadline_scope(Deadline.after(0.01, "plan stage timeout")),
        pytest.raises(LLMError) as info,
    ):
        provider.chat(Role.BRAIN, "primary-model", MESSAGES)
    provider.close()

    assert info.value.error_type == "endpoint_busy"
    assert "still computing a request that timed out" in str(info.value)
    assert "left before the plan stage timeout" in str(info.value)
    assert (waits, len(llm_server.requests)) == ([], 1)


def test_a_remote_timeout_leaves_the_next_request_alone(llm_server):
    llm_server.script([Reply(delay=1.0, body={}), chat_reply("at once")])
    waits: list[float] = []
    config = llm_config(llm_server.base_url, local_server="no", request_timeout=0.3)
    provider = OpenAICompatibleProvider(config, env={KEY_ENV: KEY}, sleep=waits.append)
    with pytest.raises(LLMError):
        provider.chat(Role.BRAIN, "primary-model", MESSAGES)

    assert provider.chat(Role.BRAIN, "primary-model", MESSAGES).text == "at once"
    provider.close()
    assert waits == []


def test_refused_connection_is_a_retryable_connection_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = make_provider(f"http://127.0.0.1:{port}/v1", request_timeout=0.5)

    with pytest.raises(LLMError) as info:
        provider.chat(Role.BRAIN, "primary-model", MESSAGES)
    provider.close()

    assert info.value.error_type == "connection_error"
    assert info.value.retryable is True


@pytest.mark.parametrize(
    "reply",
    [
        Reply(raw=b"<html>Bad Gateway</html>"),
        Reply(body={"object": "chat.completion"}),
        Reply(body={"choices": []}),
        Reply(body={"choices": [{"index": 0}]}),
        Reply(body=["not", "an", "object"]),
    ],
    ids=["not-json", "no-choices", "empty-choices", "no-message", "json-array"],
)
def test_200_without_a_chat_completion_is_an_invalid_response(llm_server, reply):
    error = chat_error(llm_server, reply)

    assert error.error_type == "invalid_response"
    assert error.retryable is False


# -- role routing and fallback ----------------------------------------------------------------
def role_models(
    server: ScriptedLLMServer, models: dict[str, list[str]] | None = None, **overrides: object
) -> RoleModels:
    """Role models with one attempt per model: fallback alone, retries are tested elsewhere."""
    config = llm_config(server.base_url, **overrides)
    return RoleModels(
        OpenAICompatibleProvider(config, env={KEY_ENV: KEY}),
        models or config.models,
        policy=RetryPolicy(attempts=1),
    )


def test_role_models_lists_each_roles_models_in_order_and_all_models_once(llm_server):
    models = role_models(
        llm_server,
        {"brain": ["a", "b"], "architect": ["b", "c"], "code_reviewer": ["a"], "maestro": ["d"]},
    )

    assert models.models_for(Role.ARCHITECT) == ("b", "c")
    assert models.all_models == ("a", "b", "c", "d")
    models.close()


def test_primary_answers_first_when_it_works(llm_server):
    llm_server.script([chat_reply("from primary")])
    models = role_models(llm_server)

    assert models.complete(Role.BRAIN, MESSAGES).text == "from primary"
    assert llm_server.models_requested() == ["primary-model"]
    models.close()


def test_failing_primary_falls_back_to_the_next_model_and_counts_usage_once(llm_server):
    llm_server.script(
        [
            Reply(status=500, body={"error": "down"}),
            chat_reply(
                "from fallback", model="fallback-model", prompt_tokens=4, completion_tokens=2
            ),
        ]
    )
    models = role_models(llm_server)

    with usage_scope() as usage:
        completion = models.complete(Role.MAESTRO, MESSAGES)
    models.close()

    assert completion.text == "from fallback"
    assert llm_server.models_requested() == ["primary-model", "fallback-model"]
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (1, 4, 2)
    assert usage.models == ["fallback-model"]


def test_when_every_model_fails_the_last_error_is_raised(llm_server):
    llm_server.script([Reply(status=500, body={}), Reply(status=401, body={})])
    models = role_models(llm_server)

    with usage_scope() as usage, pytest.raises(LLMError) as info:
        models.complete(Role.CODE_REVIEWER, MESSAGES)
    models.close()

    assert info.value.error_type == "http_401"
    assert llm_server.models_requested() == ["primary-model", "fallback-model"]
    assert usage.calls == 0


# -- usage accounting -------------------------------------------------------------------------
def test_usage_scope_sums_calls_and_tokens_over_completions(llm_server):
    llm_server.script(
        [
            chat_reply("1", model="m1", prompt_tokens=10, completion_tokens=1),
            chat_reply("2", model="m2", prompt_tokens=20, completion_tokens=2),
            chat_reply("3", model="m1", prompt_tokens=30, completion_tokens=3),
        ]
    )
    models = role_models(llm_server)

    with usage_scope() as usage:
        for role in (Role.BRAIN, Role.ARCHITECT, Role.MAESTRO):
            models.complete(role, MESSAGES)
    models.close()

    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (3, 60, 6)
    assert usage.models == ["m1", "m2"]


def test_usage_scopes_are_isolated_from_each_other(llm_server):
    llm_server.script(
        [
            chat_reply("a", prompt_tokens=1, completion_tokens=1),
            chat_reply("b", prompt_tokens=100, completion_tokens=50),
            chat_reply("c", prompt_tokens=5, completion_tokens=5),
        ]
    )
    models = role_models(llm_server)

    with usage_scope() as first:
        models.complete(Role.BRAIN, MESSAGES)
    models.complete(Role.BRAIN, MESSAGES)  # outside any scope: counted nowhere
    with usage_scope() as second:
        models.complete(Role.BRAIN, MESSAGES)
    models.close()

    assert (first.calls, first.input_tokens, first.output_tokens) == (1, 1, 1)
    assert (second.calls, second.input_tokens, second.output_tokens) == (1, 5, 5)


def test_a_nested_scope_takes_the_calls_made_inside_it(llm_server):
    llm_server.script([chat_reply("outer", prompt_tokens=1), chat_reply("inner", prompt_tokens=2)])
    models = role_models(llm_server)

    with usage_scope() as outer:
        models.complete(Role.BRAIN, MESSAGES)
        with usage_scope() as inner:
            models.complete(Role.BRAIN, MESSAGES)
    models.close()

    assert (outer.calls, outer.input_tokens) == (1, 1)
    assert (inner.calls, inner.input_tokens) == (1, 2)


# -- the prompt layer -------------------------------------------------------------------------
def test_ask_json_decodes_and_checks_the_json_object_in_a_fenced_answer(llm_server):
    llm_server.script([chat_reply('Sure!\n```json\n{"objective": "add a docstring"}\n```')])
    models = role_models(llm_server)

    answer = ask_json(models, Role.BRAIN, build_messages("Be the brain.", {"task": "x"}), OBJECTIVE)
    models.close()

    assert answer == ObjectiveAnswer(objective="add a docstring")
    assert llm_server.requests[0].body["messages"][0] == {
        "role": "system",
        "content": "Be the brain.",
    }


@pytest.mark.parametrize("text", ["I would rather not.", "", '{"objective": '])
def test_ask_json_turns_an_answer_without_json_into_invalid_plan(llm_server, text):
    llm_server.script([chat_reply(text)])
    models = role_models(llm_server)

    with pytest.raises(CycleError) as info:
        ask_json(models, Role.ARCHITECT, MESSAGES, PATCH_PLAN)
    models.close()

    assert info.value.reason is Reason.INVALID_PLAN
    assert info.value.error_type == "invalid_json"
    assert info.value.detail.startswith("architect: ")


def test_ask_json_turns_a_failed_call_into_llm_error_with_its_error_type(llm_server):
    llm_server.script([Reply(status=503, body={}), Reply(status=429, body={})])
    models = role_models(llm_server)

    with pytest.raises(CycleError) as info:
        ask_json(models, Role.CODE_REVIEWER, MESSAGES, REVIEW)
    models.close()

    assert info.value.reason is Reason.LLM_ERROR
    assert info.value.error_type == "http_429"
    assert "code_reviewer" in info.value.detail
