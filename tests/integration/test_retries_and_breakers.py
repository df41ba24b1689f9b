"""Retries and circuit breakers against a real OpenAI-compatible server over real HTTP.

The scripted server answers 429 with Retry-After, 500s, hangs, garbage and 400s; the tests
count the requests it really received. Transient failures are retried by stamina (and
counted in ``stamina_retries_total``), permanent ones are not; a model whose breaker is open
gets no request at all, and its role falls back to the next model or fails fast. Every
retry and every breaker transition shows as a metric, a span event and a log line.

Metrics live on prometheus-client's global registry and accumulate over the test session,
so counters are asserted as differences around the call under test.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from factories import (
    Reply,
    ScriptedLLMServer,
    answer_by_task,
    chat_reply,
    clean_env,
    http_service,
    log_events,
    make_agent,
    make_target_repo,
    model_like_reply,
    one_service_cycle,
    openai_config,
    repo_snapshot,
    service_url,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from hephaestus.agent.answers import OBJECTIVE
from hephaestus.agent.build import build_models
from hephaestus.agent.models import CycleError, Outcome, Reason
from hephaestus.agent.prompts import ask_json
from hephaestus.llm.base import LLMError, LLMServerError, Message, Role
from hephaestus.llm.client import RETRIED_CALLABLE, RoleModels
from hephaestus.resilience import Deadline, deadline_scope
from hephaestus.service.monitor import llm_status
from hephaestus.telemetry import default_metrics
from hephaestus.telemetry.events import install_retry_hooks

MESSAGES = [Message("system", "You are a test."), Message("user", "Say something.")]
ERROR_500 = Reply(status=500, body={"error": {"message": "internal error"}})


# -- helpers ----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def retry_hooks() -> None:
    """Stamina reports to our registry and hooks (as ``setup_telemetry`` arranges)."""
    install_retry_hooks(default_metrics())


def role_models(
    server: ScriptedLLMServer,
    models: dict[str, list[str]] | None = None,
    llm: dict[str, Any] | None = None,
    clock: Callable[[], float] | None = None,
    instruments: Any = None,
    **resilience: Any,
) -> RoleModels:
    """Role models built the way the agent builds them, against ``server``.

    ``clock`` drives the circuit breakers (a :class:`FakeClock` makes their timing exact).
    """
    config = openai_config(server, models=models, llm=llm or {}, resilience=resilience)
    if clock is None:
        return build_models(config, instruments=instruments)
    return build_models(config, clock=clock, instruments=instruments)


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def retries(error_type: str, retry_num: int = 1) -> float:
    """``stamina_retries_total`` of a model call for one error class and retry number."""
    return (
        REGISTRY.get_sample_value(
            "stamina_retries_total",
            {
                "callable": RETRIED_CALLABLE,
                "retry_num": str(retry_num),
                "error_type": f"hephaestus.llm.base.{error_type}",
            },
        )
        or 0.0
    )


def all_retries() -> float:
    """Every retry of a model call so far, whatever the error."""
    return sum(
        s.value
        for family in REGISTRY.collect()
        for s in family.samples
        if s.name == "stamina_retries_total" and s.labels["callable"] == RETRIED_CALLABLE
    )


def breaker_state(name: str) -> dict[str, float]:
    return {
        state: REGISTRY.get_sample_value(
            "hephaestus_circuit_breaker_state", {"breaker": name, "state": state}
        )
        for state in ("closed", "open", "half_open")
    }


def one_hot(state: str) -> dict[str, float]:
    return {s: 1.0 if s == state else 0.0 for s in ("closed", "open", "half_open")}


MOVES = (("closed", "open"), ("open", "half_open"), ("half_open", "closed"), ("half_open", "open"))


def transitions(name: str) -> dict[tuple[str, str], float]:
    return {
        (a, b): REGISTRY.get_sample_value(
            "hephaestus_circuit_breaker_transitions_total",
            {"breaker": name, "from_state": a, "to_state": b},
        )
        or 0.0
        for a, b in MOVES
    }


def delta(after: dict, before: dict) -> dict:
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


def stamped(times: list[float], reply: Reply) -> Callable[[dict[str, Any]], Reply]:
    """``reply``, noting when the server received the request."""

    def answer(_request: dict[str, Any]) -> Reply:
        times.append(time.monotonic())
        return reply

    return answer


def chat_spans(exporter: InMemorySpanExporter, model: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == f"chat {model}"]


def events(span: ReadableSpan, name: str) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == name]


# -- which failures are retried ---------------------------------------------------------------
def test_a_429_is_retried_after_the_servers_retry_after(llm_server):
    times: list[float] = []
    llm_server.script(
        [
            stamped(
                times, Reply(status=429, body={"error": "slow down"}, headers={"Retry-After": "1"})
            ),
            stamped(times, chat_reply("fine now")),
        ]
    )
    models = role_models(llm_server)
    before = retries("LLMRateLimited")

    completion = models.complete(Role.BRAIN, MESSAGES)

    assert completion.text == "fine now"
    assert len(llm_server.requests) == 2
    assert times[1] - times[0] >= 0.95  # the configured backoff alone would be 0.01 s
    assert retries("LLMRateLimited") - before == 1


def test_server_errors_are_retried_until_one_attempt_succeeds(llm_server):
    llm_server.script([ERROR_500, Reply(status=503, body={}), chat_reply("third time lucky")])
    models = role_models(llm_server)
    first, second = retries("LLMServerError", 1), retries("LLMServerError", 2)

    assert models.complete(Role.BRAIN, MESSAGES).text == "third time lucky"
    assert len(llm_server.requests) == 3
    assert (retries("LLMServerError", 1) - first, retries("LLMServerError", 2) - second) == (1, 1)


def test_a_hanging_request_times_out_and_is_retried(llm_server):
    llm_server.script(
        [dataclasses.replace(chat_reply("too late"), delay=60), chat_reply("on time")]
    )
    models = role_models(llm_server, llm={"request_timeout": 0.3})
    before = retries("LLMTimeout")

    assert models.complete(Role.BRAIN, MESSAGES).text == "on time"
    assert llm_server.answered == 1  # the retry was answered while the first still hung
    assert len(llm_server.requests) == 2
    assert retries("LLMTimeout") - before == 1


def test_a_local_servers_timeout_is_not_retried_and_the_fallback_waits_for_it(llm_server):
    times: list[float] = []
    llm_server.script(
        [
            stamped(times, dataclasses.replace(chat_reply("too late"), delay=1.0)),
            stamped(times, chat_reply("from the fallback", model="model-f")),
        ]
    )
    models = role_models(
        llm_server,
        {"brain": ["model-p", "model-f"]},
        llm={"request_timeout": 0.3, "local_server": "yes"},
        breaker_failure_threshold=1,
    )
    before = all_retries()

    completion = models.complete(Role.BRAIN, MESSAGES)

    assert completion.text == "from the fallback"
    assert llm_server.models_requested() == ["model-p", "model-f"]
    assert all_retries() == before  # the timed-out request was not sent again
    assert times[1] - times[0] >= 0.55  # 0.3 s timeout, then ~0.3 s for the server to finish
    assert breaker_state("openai/model-p") == one_hot("open")  # a timeout is an outage


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (Reply(raw=b"<html>502 Bad Gateway</html>"), "invalid_response"),
        (Reply(body={"choices": []}), "invalid_response"),
        (Reply(status=400, body={"error": "bad request"}), "http_400"),
        (Reply(status=401, body={"error": "no key"}), "http_401"),
        (Reply(status=404, body={"error": "no such model"}), "http_404"),
    ],
)
def test_permanent_failures_are_not_retried(llm_server, reply, error_type):
    llm_server._default = lambda _request: reply
    models = role_models(llm_server)
    before = all_retries()

    with pytest.raises(LLMError) as info:
        models.complete(Role.BRAIN, MESSAGES)

    assert info.value.error_type == error_type
    assert len(llm_server.requests) == 1
    assert all_retries() == before


def test_a_model_answer_without_json_is_not_retried_and_is_an_invalid_plan(llm_server):
    llm_server._default = lambda _request: chat_reply("I think you should add more tests.")
    models = role_models(llm_server)
    before = all_retries()

    with pytest.raises(CycleError) as info:
        ask_json(models, Role.BRAIN, MESSAGES, OBJECTIVE)

    assert info.value.reason is Reason.INVALID_PLAN
    assert len(llm_server.requests) == 1
    assert all_retries() == before


def test_when_attempts_run_out_the_last_error_is_raised(llm_server):
    llm_server.script(
        [
            Reply(status=503, body={}),
            Reply(status=502, body={}),
            ERROR_500,
            chat_reply("never asked for"),
        ]
    )
    models = role_models(llm_server, retry_attempts=3)

    with pytest.raises(LLMServerError) as info:
        models.complete(Role.BRAIN, MESSAGES)

    assert info.value.error_type == "http_500"
    assert len(llm_server.requests) == 3


def test_retry_timeout_bounds_the_time_all_attempts_may_take(llm_server):
    llm_server._default = lambda _request: ERROR_500
    models = role_models(
        llm_server,
        llm={"request_timeout": 0.3},
        retry_attempts=20,
        retry_timeout=0.4,
        retry_wait_initial=0.1,
        retry_wait_max=0.1,
        breaker_failure_threshold=100,
    )

    with pytest.raises(LLMServerError):
        models.complete(Role.BRAIN, MESSAGES)

    assert 1 <= len(llm_server.requests) <= 6  # far fewer than the 20 attempts allowed


def test_the_stage_deadline_cuts_a_hanging_request_short_and_leaves_no_time_to_retry(llm_server):
    llm_server._default = lambda _request: dataclasses.replace(chat_reply("late"), delay=60)
    models = role_models(llm_server, llm={"request_timeout": 50.0})

    with deadline_scope(Deadline.after(0.3, "plan stage timeout")), pytest.raises(LLMError) as info:
        models.complete(Role.BRAIN, MESSAGES)

    assert info.value.error_type == "timeout"
    assert llm_server.answered == 0  # cut by the deadline, not by the 50 s request timeout
    assert len(llm_server.requests) == 1


def test_an_expired_deadline_sends_no_request_at_all(llm_server):
    llm_server._default = lambda _request: chat_reply("never asked for")
    models = role_models(llm_server)

    with deadline_scope(Deadline.after(0.0, "cycle deadline")), pytest.raises(LLMError) as info:
        models.complete(Role.BRAIN, MESSAGES)

    assert info.value.error_type == "deadline"
    assert llm_server.requests == []


def test_a_deadline_during_a_stage_ends_the_cycle_as_a_timeout(llm_server):
    llm_server._default = lambda _request: chat_reply("never asked for")
    models = role_models(llm_server)

    with (
        deadline_scope(Deadline.after(0.0, "objective stage timeout")),
        pytest.raises(CycleError) as info,
    ):
        ask_json(models, Role.BRAIN, MESSAGES, OBJECTIVE)
    assert info.value.reason is Reason.TIMEOUT


# -- each retry is visible --------------------------------------------------------------------
def test_each_retry_is_a_span_event_on_the_chat_span_and_a_log_line(
    llm_server, spans, instruments, json_logs
):
    llm_server.script([ERROR_500, Reply(status=503, body={}), chat_reply("ok")])
    models = role_models(llm_server, instruments=instruments)

    with instruments.cycle_span("corr-retries", 1):
        models.complete(Role.BRAIN, MESSAGES)

    (chat,) = chat_spans(spans, "model-a")
    retried = events(chat, "retry")
    assert [(e["retry.attempt"], e["error.type"]) for e in retried] == [
        (1, "http_500"),
        (2, "http_503"),
    ]
    assert all(e["retry.callable"] == RETRIED_CALLABLE for e in retried)
    lines = log_events(json_logs, "retry scheduled")
    assert [(line["retry_num"], line["error.type"], line["correlation_id"]) for line in lines] == [
        (1, "http_500", "corr-retries"),
        (2, "http_503", "corr-retries"),
    ]
    span_id = format(chat.context.span_id, "016x")
    assert {line["span_id"] for line in lines} == {span_id}  # the line leads to the chat span


# -- circuit breakers -------------------------------------------------------------------------
def primary_down_unless(up: threading.Event, primary: str) -> Callable[[dict[str, Any]], Reply]:
    def answer(request: dict[str, Any]) -> Reply:
        if request["model"] == primary and not up.is_set():
            return ERROR_500
        return chat_reply(f"answer from {request['model']}", model=request["model"])

    return answer


def test_an_open_breaker_sends_the_role_to_its_fallback_until_a_probe_closes_it(
    llm_server, spans, instruments, json_logs
):
    up = threading.Event()
    name = "openai/model-p"
    script = primary_down_unless(up, "model-p")
    during_probe: list[dict[str, float]] = []

    def observed(request: dict[str, Any]) -> Reply:
        if request["model"] == "model-p" and up.is_set():
            during_probe.append(breaker_state(name))  # the gauge while the probe is out
        return script(request)

    llm_server._default = observed
    clock = FakeClock()
    models = role_models(
        llm_server,
        {"brain": ["model-p", "model-f"]},
        clock=clock,
        retry_attempts=3,
        breaker_failure_threshold=3,
        breaker_reset_timeout=0.3,
        instruments=instruments,
    )
    assert breaker_state(name) == one_hot("closed")
    start = transitions(name)

    # 1: three failed attempts open the primary's breaker; the fallback answers
    with instruments.cycle_span("corr-breaker", 1):
        answer = models.complete(Role.BRAIN, MESSAGES)
    assert answer.response_model == "model-f"
    assert llm_server.models_requested() == ["model-p"] * 3 + ["model-f"]
    assert breaker_state(name) == one_hot("open")
    assert delta(transitions(name), start) == {("closed", "open"): 1}
    (failed_chat,) = chat_spans(spans, "model-p")
    assert [
        (e["hephaestus.breaker.from_state"], e["hephaestus.breaker.to_state"])
        for e in events(failed_chat, "circuit_breaker.transition")
    ] == [("closed", "open")]

    # 2: while open, the primary gets no request at all
    llm_server.requests.clear()
    assert models.complete(Role.BRAIN, MESSAGES).response_model == "model-f"
    assert llm_server.models_requested() == ["model-f"]
    assert breaker_state(name) == one_hot("open")

    # 3: after the reset timeout one probe goes to the primary, which is back: it closes
    clock.advance(0.29)
    assert models.complete(Role.BRAIN, MESSAGES).response_model == "model-f"  # not yet
    clock.advance(0.02)
    up.set()
    llm_server.requests.clear()
    spans.clear()
    with instruments.cycle_span("corr-breaker", 1):
        answer = models.complete(Role.BRAIN, MESSAGES)
    assert answer.response_model == "model-p"
    assert llm_server.models_requested() == ["model-p"]
    assert during_probe == [one_hot("half_open")]
    assert breaker_state(name) == one_hot("closed")
    assert delta(transitions(name), start) == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }
    (probe_chat,) = chat_spans(spans, "model-p")
    assert [
        (
            e["hephaestus.breaker"],
            e["hephaestus.breaker.from_state"],
            e["hephaestus.breaker.to_state"],
        )
        for e in events(probe_chat, "circuit_breaker.transition")
    ] == [(name, "open", "half_open"), (name, "half_open", "closed")]

    lines = log_events(json_logs, "circuit breaker transition")
    assert [
        (line["breaker"], line["from_state"], line["to_state"], line["correlation_id"])
        for line in lines
    ] == [
        (name, "closed", "open", "corr-breaker"),
        (name, "open", "half_open", "corr-breaker"),
        (name, "half_open", "closed", "corr-breaker"),
    ]
    assert [line["level"] for line in lines] == ["warning", "info", "info"]


def test_a_failed_probe_reopens_the_breaker_and_the_fallback_answers(
    llm_server, spans, instruments
):
    llm_server._default = primary_down_unless(threading.Event(), "model-p")
    clock = FakeClock()
    models = role_models(
        llm_server,
        {"brain": ["model-p", "model-f"]},
        clock=clock,
        retry_attempts=3,
        breaker_failure_threshold=2,
        breaker_reset_timeout=0.2,
        instruments=instruments,
    )
    name = "openai/model-p"
    start = transitions(name)
    models.complete(Role.BRAIN, MESSAGES)
    assert llm_server.models_requested() == ["model-p", "model-p", "model-f"]

    clock.advance(0.25)  # past the open interval: the next call is the probe
    llm_server.requests.clear()
    spans.clear()
    assert models.complete(Role.BRAIN, MESSAGES).response_model == "model-f"

    # exactly one probe: its failure reopens the breaker before stamina's retry goes out
    assert llm_server.models_requested() == ["model-p", "model-f"]
    assert breaker_state(name) == one_hot("open")
    assert delta(transitions(name), start) == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "open"): 1,
    }
    (probe_chat,) = chat_spans(spans, "model-p")
    assert [
        (e["hephaestus.breaker.from_state"], e["hephaestus.breaker.to_state"])
        for e in events(probe_chat, "circuit_breaker.transition")
    ] == [("open", "half_open"), ("half_open", "open")]

    llm_server.requests.clear()  # the timer restarted with the failed probe
    models.complete(Role.BRAIN, MESSAGES)
    assert llm_server.models_requested() == ["model-f"]


def test_when_every_breaker_of_a_role_is_open_the_call_fails_fast_without_a_request(llm_server):
    llm_server._default = lambda _request: ERROR_500
    models = role_models(
        llm_server,
        {"brain": ["model-q1", "model-q2"]},
        retry_attempts=1,
        breaker_failure_threshold=1,
        breaker_reset_timeout=60,
    )
    with pytest.raises(LLMServerError):
        models.complete(Role.BRAIN, MESSAGES)
    assert llm_server.models_requested() == ["model-q1", "model-q2"]
    assert models.open_roles() == ["brain"]

    llm_server.requests.clear()
    with pytest.raises(LLMError) as info:
        models.complete(Role.BRAIN, MESSAGES)

    assert info.value.error_type == "circuit_open"
    assert "every circuit breaker" in str(info.value)
    assert llm_server.requests == []  # failing fast means asking no one


def test_a_cycle_whose_role_has_every_breaker_open_fails_fast_with_llm_error(
    llm_server, sample_repo
):
    llm_server._default = answer_by_task(
        next_objective=lambda request: (
            ERROR_500 if request["model"] == "model-dead" else model_like_reply(request)
        )
    )
    config = openai_config(
        llm_server,
        models={"brain": ["model-dead"]},
        resilience={
            "retry_attempts": 1,
            "breaker_failure_threshold": 1,
            "breaker_reset_timeout": 60,
        },
    )
    before = repo_snapshot(sample_repo)
    exporter = InMemorySpanExporter()
    runner = make_agent(config, sample_repo, span_exporter=exporter)
    try:
        assert llm_status(runner.models)["status"] == "ok"
        first = runner.run_cycle()  # the brain's only model fails once: its breaker opens
        assert (first.reason, first.detail.split(":")[0]) == (Reason.LLM_ERROR, "brain")
        status = llm_status(runner.models)
        sent = len(llm_server.requests)
        exporter.clear()

        second = runner.run_cycle()
    finally:
        runner.close()

    assert status["status"] == "error"
    assert status["reason"] == "every circuit breaker is open for brain"
    assert status["breakers"] == {"openai/model-dead": "open", "openai/model-a": "closed"}
    assert (second.outcome, second.reason) == (Outcome.FAILED, Reason.LLM_ERROR)
    assert len(llm_server.requests) == sent  # the second cycle made no network call
    finished = exporter.get_finished_spans()
    (brain,) = [s for s in finished if s.name == "invoke_agent brain"]
    assert brain.attributes["error.type"] == "circuit_open"
    (root,) = [s for s in finished if s.name == "invoke_workflow hephaestus.cycle"]
    assert root.attributes["hephaestus.reason"] == "llm_error"
    assert list(second.durations) == ["scan", "objective", "record"]
    assert repo_snapshot(sample_repo) == before


def test_one_open_breaker_of_two_makes_the_llm_status_degraded(llm_server, sample_repo):
    llm_server._default = answer_by_task(
        next_objective=lambda request: (
            ERROR_500 if request["model"] == "model-dead" else model_like_reply(request)
        ),
        patch_plan="no plan today",
    )
    config = openai_config(
        llm_server,
        models={"brain": ["model-dead", "model-a"]},
        resilience={
            "retry_attempts": 1,
            "breaker_failure_threshold": 1,
            "breaker_reset_timeout": 60,
        },
    )
    runner = make_agent(config, sample_repo)
    try:
        result = runner.run_cycle()
        status = llm_status(runner.models)
    finally:
        runner.close()

    assert result.reason is Reason.INVALID_PLAN  # the fallback answered the brain
    assert status["status"] == "degraded"
    assert status["breakers"]["openai/model-dead"] == "open"
    assert "reason" not in status


# -- fault injection through the offline provider ---------------------------------------------
def test_chaos_failing_every_model_call_fails_the_cycle_with_llm_error(tmp_path):
    repo = make_target_repo(
        tmp_path / "target",
        {
            "pkg/__init__.py": "VALUE = 1\n",
            "tests/test_pkg.py": '"""Tests."""\n\n\ndef test_value():\n    assert 1\n',
        },
    )
    before = repo_snapshot(repo)
    env = clean_env(
        {
            "HEPHAESTUS_CHAOS_LLM_ERROR_RATE": "1.0",
            "HEPHAESTUS_CHAOS_SEED": "3",
            "HEPHAESTUS_RESILIENCE_RETRY_WAIT_INITIAL": "0.01",
            "HEPHAESTUS_RESILIENCE_RETRY_WAIT_MAX": "0.02",
            "HEPHAESTUS_RESILIENCE_RETRY_WAIT_JITTER": "0",
            "HEPHAESTUS_LOGGING_FORMAT": "json",
        }
    )

    proc = subprocess.run(
        [sys.executable, "-m", "hephaestus", "run", "--project", str(repo), "--cycles", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert "llm_error" in proc.stdout
    assert repo_snapshot(repo) == before
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    finished = [line for line in lines if line["event"] == "cycle finished"]
    assert [(line["outcome"], line["reason"]) for line in finished] == [("failed", "llm_error")]
    retried = [line["error.type"] for line in lines if line["event"] == "retry scheduled"]
    assert len(retried) == 2 and set(retried) <= {"timeout", "http_500"}
    opened = [line for line in lines if line["event"] == "circuit breaker transition"]
    assert [(line["breaker"], line["to_state"]) for line in opened] == [
        ("offline/hephaestus-offline", "open")
    ]


def test_readyz_and_api_health_report_open_breakers_over_http(llm_server, sample_repo):
    import httpx

    llm_server._default = lambda request: (
        Reply(status=503, body={"error": "down"})
        if request["model"] == "model-dead"
        else answer_by_task()(request)
    )
    config = openai_config(
        llm_server,
        models={"brain": ["model-dead"]},
        resilience={
            "retry_attempts": 1,
            "breaker_failure_threshold": 1,
            "breaker_reset_timeout": 60,
        },
    )
    with (
        http_service(sample_repo, config) as service,
        httpx.Client(base_url=service_url(service), timeout=10) as client,
    ):
        ready_before = client.get("/readyz").status_code
        one_service_cycle(service)  # the brain's only model fails: its breaker opens
        ready = client.get("/readyz")
        health = client.get("/api/health").json()

    assert ready_before == 200
    assert ready.status_code == 503
    assert "llm: every circuit breaker is open for brain" in ready.json()["reasons"]
    assert health["open_breakers"] == ["openai/model-dead"]
    assert health["components"]["llm"]["breakers"]["openai/model-dead"] == "open"
    assert health["last_cycle"]["reason"] == "llm_error"
