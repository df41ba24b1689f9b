"""One cycle is one trace: its span tree, its errors, what it may contain, and how to find it.

Real cycles run on a real git repo with the sample project's real pytest suite; model calls go
to the offline engine or over real HTTP to a scripted OpenAI-compatible server. Spans are read
from an in-memory exporter, from the local span file and, for ``hephaestus trace
--jaeger-url``, from a fake Jaeger that serves the cycle's real spans as OTLP/JSON.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from factories import (
    Reply,
    ScriptedLLMServer,
    answer_by_task,
    chat_reply,
    make_agent,
    make_config,
    make_target_repo,
    model_like_reply,
    objective,
    openai_config,
    plan,
    replace,
    run_cli,
)
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hephaestus.agent import brain
from hephaestus.agent.models import CycleResult
from hephaestus.cli import main
from hephaestus.config import Config
from hephaestus.telemetry import StructuredLogger
from hephaestus.telemetry.spanfile import read_span_file

pytestmark = pytest.mark.slow

ROOT = "invoke_workflow hephaestus.cycle"
AGENTS = ("brain", "architect", "code_reviewer", "maestro")
CORRELATION = "hephaestus.correlation_id"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
# A sentence of the brain's instructions: it is in every brain prompt, and nowhere else.
PROMPT_TEXT = "You are the brain of Hephaestus"
SECRET = "sk-test-SECRET-123"
assert PROMPT_TEXT in brain.INSTRUCTIONS


# -- reading spans ----------------------------------------------------------------------------
def flat(span: ReadableSpan) -> dict[str, Any]:
    """An SDK span as a plain dict with hex ids."""
    context = span.get_span_context()
    return {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
    }


@dataclass
class Traced:
    """One cycle's result, memory row and spans, with tree navigation."""

    result: CycleResult
    row: dict[str, Any]
    readable: list[ReadableSpan]
    repo: Path
    spans: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.spans = sorted((flat(s) for s in self.readable), key=lambda s: s["start_ns"])

    @property
    def root(self) -> dict[str, Any]:
        roots = [s for s in self.spans if s["parent_span_id"] is None]
        assert len(roots) == 1, [s["name"] for s in roots]
        return roots[0]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["name"] == name]

    def one(self, name: str) -> dict[str, Any]:
        found = self.named(name)
        assert len(found) == 1, f"{len(found)} spans named {name!r}"
        return found[0]

    def children(self, span: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["parent_span_id"] == span["span_id"]]

    def text(self) -> str:
        """Everything the spans say (names, attributes, events, statuses) as one string."""
        return json.dumps(self.spans, default=str)


def run_traced(
    config: Config,
    repo: Path,
    *,
    correlation_id: str | None = None,
    env: dict[str, str] | None = None,
) -> Traced:
    exporter = InMemorySpanExporter()
    runner = make_agent(config, repo, span_exporter=exporter, env=env)
    try:
        result = runner.run_cycle(correlation_id=correlation_id)
        row = runner.memory.find(result.correlation_id)
    finally:
        runner.close()
    return Traced(result, row, list(exporter.get_finished_spans()), repo)


def errors(span: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in span["events"] if e["name"] == "exception"]


# -- scripted model answers -------------------------------------------------------------------


BREAKING = replace("def apply_discount(", "def _unused(): pass\n\n\ndef apply_discount_(")


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def succeeded(tmp_path_factory) -> Traced:
    """One offline cycle on the sample project that commits a change."""
    repo = make_target_repo(tmp_path_factory.mktemp("succeeded") / "target", sample=True)
    traced = run_traced(make_config(), repo)
    assert traced.result.outcome.value == "succeeded", traced.result.detail
    return traced


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


# -- the span tree ----------------------------------------------------------------------------
def test_a_succeeded_cycle_is_one_trace_under_the_workflow_span(succeeded):
    root = succeeded.root

    assert {s["trace_id"] for s in succeeded.spans} == {root["trace_id"]}
    assert root["name"] == ROOT
    assert root["status"] != "ERROR"
    attributes = root["attributes"]
    assert attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert (attributes["hephaestus.outcome"], attributes["hephaestus.reason"]) == (
        "succeeded",
        "committed",
    )
    assert attributes["hephaestus.cycle.number"] == succeeded.row["cycle_number"]
    assert attributes["hephaestus.llm_calls"] == succeeded.row["llm_calls"] == 4
    assert attributes["hephaestus.usage.input_tokens"] == succeeded.row["input_tokens"] > 0
    assert attributes["hephaestus.usage.output_tokens"] == succeeded.row["output_tokens"] > 0
    assert [s["name"] for s in succeeded.children(root)] == [
        "hephaestus.scan",
        *(f"invoke_agent {a}" for a in AGENTS),
        "hephaestus.apply",
        "hephaestus.validate",
        "hephaestus.commit",
        "hephaestus.record",
    ]


def test_the_memory_row_and_every_span_carry_the_same_ids(succeeded):
    root = succeeded.root

    assert succeeded.row["trace_id"] == succeeded.result.trace_id == root["trace_id"]
    assert succeeded.row["correlation_id"] == succeeded.result.correlation_id
    assert uuid.UUID(succeeded.result.correlation_id).version == 4  # none given: a UUID4
    missing = [
        s["name"]
        for s in succeeded.spans
        if s["attributes"].get(CORRELATION) != succeeded.result.correlation_id
    ]
    assert missing == []


@pytest.mark.parametrize("agent", AGENTS)
def test_each_agent_span_holds_one_client_span_per_model_call(succeeded, agent):
    span = succeeded.one(f"invoke_agent {agent}")
    assert span["attributes"]["gen_ai.agent.name"] == agent
    assert span["attributes"]["gen_ai.operation.name"] == "invoke_agent"

    [chat] = succeeded.children(span)
    model = "hephaestus-offline"
    assert (chat["name"], chat["kind"]) == (f"chat {model}", "CLIENT")
    attributes = chat["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "offline"
    assert attributes["gen_ai.request.model"] == attributes["gen_ai.response.model"] == model
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert "error.type" not in attributes


def test_the_root_totals_add_up_the_model_calls(succeeded):
    chats = [s for s in succeeded.spans if s["name"].startswith("chat ")]
    root = succeeded.root["attributes"]

    assert len(chats) == root["hephaestus.llm_calls"]
    for kind in ("input", "output"):
        assert (
            sum(c["attributes"][f"gen_ai.usage.{kind}_tokens"] for c in chats)
            == root[f"hephaestus.usage.{kind}_tokens"]
        )


def test_validation_runs_pytest_as_a_tool_span_that_the_subprocess_joins(succeeded):
    validate = succeeded.one("hephaestus.validate")
    # the base commit's tests are counted first (once per base), then the patched suite runs
    [collect, tool] = succeeded.children(validate)
    assert collect["name"] == "execute_tool pytest --collect-only"
    before = validate["attributes"]["hephaestus.tests.collected_before"]
    assert before > 0
    assert validate["attributes"]["hephaestus.tests.collected_after"] == before
    assert tool["name"] == "execute_tool pytest"
    assert tool["attributes"]["gen_ai.tool.name"] == "pytest"
    assert tool["attributes"]["hephaestus.tool.result"] == "passed"
    assert tool["attributes"]["process.exit.code"] == 0

    # the pytest subprocess wrote its own spans to the span file, under the tool span
    on_file = [
        s
        for s in read_span_file(succeeded.repo / ".hephaestus" / "traces.jsonl")
        if s["trace_id"] == tool["trace_id"]
    ]
    [session] = [s for s in on_file if s["name"] == "pytest session"]
    assert session["parent_span_id"] == tool["span_id"]
    assert session["attributes"][CORRELATION] == succeeded.result.correlation_id
    # every test passed: counted on the session, no span of its own (telemetry.test_spans)
    assert session["attributes"]["hephaestus.tests.passed"] == before
    assert [s for s in on_file if s["name"] == "pytest test"] == []


# -- errors -----------------------------------------------------------------------------------
def test_a_failed_cycle_marks_the_root_and_the_failing_stage_as_errors(llm_server, sample_repo):
    llm_server._default = answer_by_task(next_objective=objective(), patch_plan=plan(BREAKING))
    traced = run_traced(openai_config(llm_server), sample_repo)
    assert traced.result.reason.value == "tests_failed", traced.result.detail

    root = traced.root
    assert root["status"] == "ERROR"
    assert root["attributes"]["error.type"] == "tests_failed"
    assert root["attributes"]["hephaestus.outcome"] == "failed"
    assert [s["name"] for s in traced.children(root)][-2:] == [
        "hephaestus.validate",
        "hephaestus.record",
    ]  # no commit after a failed validation

    validate = traced.one("hephaestus.validate")
    assert validate["status"] == "ERROR"
    assert validate["attributes"]["error.type"] == "tests_failed"
    [exception] = errors(validate)
    assert exception["attributes"]["exception.type"].endswith("CycleError")
    assert "pytest exited with" in exception["attributes"]["exception.message"]
    tool = traced.one("execute_tool pytest")
    assert tool["status"] == "ERROR"
    assert tool["attributes"]["error.type"] == "failed"
    assert tool["attributes"]["process.exit.code"] not in (0, 5)
    others = [s["name"] for s in traced.spans if s["status"] == "ERROR"]
    assert sorted(others) == sorted([ROOT, "hephaestus.validate", "execute_tool pytest"])


def test_a_rejected_cycle_is_a_decision_not_an_error(llm_server, sample_repo):
    llm_server._default = answer_by_task(
        review=json.dumps({"approved": False, "feedback": "too risky"})
    )
    traced = run_traced(openai_config(llm_server), sample_repo)

    root = traced.root
    assert (root["attributes"]["hephaestus.outcome"], root["attributes"]["hephaestus.reason"]) == (
        "rejected",
        "review_rejected",
    )
    assert "error.type" not in root["attributes"]
    assert [s["name"] for s in traced.spans if s["status"] == "ERROR"] == []
    reviewer = traced.one("invoke_agent code_reviewer")
    assert reviewer["attributes"]["hephaestus.stage.outcome"] == "rejected"
    assert errors(reviewer) == []


def test_chat_spans_name_the_server_they_called(llm_server, sample_repo):
    llm_server._default = answer_by_task()
    traced = run_traced(openai_config(llm_server), sample_repo)

    chats = [s for s in traced.spans if s["name"].startswith("chat ")]
    assert len(chats) == len(llm_server.requests) == 4
    url = urlsplit(llm_server.base_url)
    for chat in chats:
        attributes = chat["attributes"]
        assert (attributes["server.address"], attributes["server.port"]) == (url.hostname, url.port)
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.request.model"] == "model-a"
        assert attributes["gen_ai.response.model"] == "model-a"
        assert (
            attributes["gen_ai.usage.input_tokens"],
            attributes["gen_ai.usage.output_tokens"],
        ) == (11, 7)


def brain_primary_down(request: dict) -> Reply:
    """The brain's primary model (model-x) answers HTTP 500; every other model works."""
    if request["model"] == "model-x":
        return Reply(status=500, body={"error": "primary is down"})
    return model_like_reply(request)


def fallback_config(server: ScriptedLLMServer, **resilience: object) -> Config:
    """The brain tries model-x, then model-b; the cycle ends at the plan (no pytest run)."""
    server._default = answer_by_task(next_objective=brain_primary_down, patch_plan="no plan today")
    return openai_config(
        server,
        models={"brain": ["model-x", "model-b"]},
        resilience={"retry_wait_initial": 0, "retry_wait_jitter": 0, **resilience},
    )


def test_a_failed_model_call_is_an_error_span_and_the_fallback_answers(llm_server, sample_repo):
    traced = run_traced(fallback_config(llm_server, retry_attempts=2), sample_repo)
    assert llm_server.models_requested()[:3] == ["model-x", "model-x", "model-b"]

    agent = traced.one("invoke_agent brain")
    failed, answered = traced.children(agent)
    assert failed["name"] == "chat model-x"
    assert failed["status"] == "ERROR"
    assert failed["attributes"]["error.type"] == "http_500"
    assert "gen_ai.response.model" not in failed["attributes"]
    assert len(errors(failed)) == 1
    retries = [e["attributes"] for e in failed["events"] if e["name"] == "retry"]
    assert [r["error.type"] for r in retries] == ["http_500"]
    assert answered["name"] == "chat model-b"
    assert answered["status"] != "ERROR"
    assert answered["attributes"]["gen_ai.response.model"] == "model-b"
    assert agent["status"] != "ERROR"  # the fallback answered, the stage went on
    assert traced.one("invoke_agent architect")["attributes"]["error.type"] == "invalid_json"
    assert traced.root["attributes"]["hephaestus.llm_calls"] == 2  # failures do not count


def test_a_circuit_breaker_opening_is_an_event_in_the_agent_span(llm_server, sample_repo):
    config = fallback_config(llm_server, retry_attempts=1, breaker_failure_threshold=1)
    traced = run_traced(config, sample_repo)
    assert llm_server.models_requested()[:2] == ["model-x", "model-b"]

    agent = traced.one("invoke_agent brain")
    events = [
        e["attributes"]
        for span in (agent, *traced.children(agent))
        for e in span["events"]
        if e["name"] == "circuit_breaker.transition"
    ]
    assert [
        (
            e["hephaestus.breaker"],
            e["hephaestus.breaker.from_state"],
            e["hephaestus.breaker.to_state"],
        )
        for e in events
    ] == [("openai/model-x", "closed", "open")]


# -- content and secrets ----------------------------------------------------------------------
def test_prompts_are_recorded_as_a_hash_and_a_length_by_default(llm_server, sample_repo):
    llm_server._default = answer_by_task()
    traced = run_traced(openai_config(llm_server), sample_repo)

    chats = [s for s in traced.spans if s["name"].startswith("chat ")]
    sent = [json.dumps(r.body["messages"]) for r in llm_server.requests]
    assert len(chats) == len(sent) == 4
    for chat, prompt in zip(chats, sent, strict=True):
        attributes = chat["attributes"]
        assert attributes["hephaestus.prompt.sha256"] == hashlib.sha256(prompt.encode()).hexdigest()
        assert attributes["hephaestus.prompt.length"] == len(prompt)
        assert HEX64.match(attributes["hephaestus.completion.sha256"])
        assert attributes["hephaestus.completion.length"] > 0
        assert "gen_ai.input.messages" not in attributes
        assert "gen_ai.output.messages" not in attributes
    assert PROMPT_TEXT in sent[0]
    assert PROMPT_TEXT not in traced.text()


def test_an_operator_can_opt_in_to_recording_prompts_and_completions(llm_server, sample_repo):
    llm_server._default = answer_by_task(next_objective=chat_reply(objective("Price sanely")))
    traced = run_traced(openai_config(llm_server, telemetry={"capture_content": True}), sample_repo)

    [brain_chat] = traced.children(traced.one("invoke_agent brain"))
    attributes = brain_chat["attributes"]
    assert PROMPT_TEXT in attributes["gen_ai.input.messages"]
    assert (
        json.loads(attributes["gen_ai.input.messages"]) == llm_server.requests[0].body["messages"]
    )
    assert json.loads(attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "content": objective("Price sanely")}
    ]
    assert "hephaestus.prompt.sha256" not in attributes


def test_the_api_key_appears_in_no_span_log_line_or_file(llm_server, sample_repo, json_logs):
    llm_server._default = answer_by_task()
    config = openai_config(
        llm_server,
        llm={"api_key_env": "HEPHAESTUS_TEST_API_KEY"},
        telemetry={"capture_content": True},
    )
    traced = run_traced(config, sample_repo, env={"HEPHAESTUS_TEST_API_KEY": SECRET})
    assert traced.result.outcome.value == "succeeded", traced.result.detail
    assert {r.headers.get("Authorization") for r in llm_server.requests} == {f"Bearer {SECRET}"}

    logs = json_logs.getvalue()
    assert "cycle finished" in logs
    files = [p for p in (sample_repo / ".hephaestus").rglob("*") if p.is_file()]
    assert {"traces.jsonl", "memory.db"} <= {p.name for p in files}
    stored = b"".join(p.read_bytes() for p in files).decode("utf-8", "replace")
    for text in (traced.text(), logs, stored):
        assert SECRET not in text
        assert "Bearer" not in text


# -- correlation ------------------------------------------------------------------------------
def test_a_caller_supplied_correlation_id_reaches_spans_pytest_and_memory(sample_repo):
    traced = run_traced(make_config(), sample_repo, correlation_id="op-42")

    assert traced.result.correlation_id == "op-42"
    assert {s["attributes"][CORRELATION] for s in traced.spans} == {"op-42"}
    assert traced.row["correlation_id"] == "op-42"
    assert traced.row["trace_id"] == traced.root["trace_id"]
    tool = traced.one("execute_tool pytest")
    from_pytest = [
        s
        for s in read_span_file(sample_repo / ".hephaestus" / "traces.jsonl")
        if s["name"].startswith("pytest ")
    ]
    assert from_pytest, "the pytest subprocess exported no span"
    # the subprocess learns the id only from the W3C baggage it was handed
    assert {s["attributes"].get(CORRELATION) for s in from_pytest} == {"op-42"}
    assert {s["trace_id"] for s in from_pytest} == {tool["trace_id"]}


def hephaestus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, timeout=120)


def test_the_trace_command_prints_the_tree_of_a_cycle_run_from_the_cli(sample_repo):
    run = hephaestus(
        "run",
        "--project",
        str(sample_repo),
        "--correlation-id",
        "op-7",
        "--cycles",
        "1",
        cwd=sample_repo,
    )
    assert run.returncode == 0, run.stderr
    finished = [json.loads(line) for line in run.stderr.splitlines() if '"cycle finished"' in line]
    assert [line["correlation_id"] for line in finished] == ["op-7"]
    trace_id = finished[0]["trace_id"]

    by_correlation = hephaestus("trace", "op-7", "--project", str(sample_repo), cwd=sample_repo)
    assert by_correlation.returncode == 0, by_correlation.stderr
    tree = by_correlation.stdout
    assert f"trace {trace_id}" in tree and "correlation_id=op-7" in tree
    for name in (
        ROOT,
        "invoke_agent brain",
        "chat hephaestus-offline",
        "execute_tool pytest",
        "pytest session",
        "hephaestus.record",
    ):
        assert name in tree

    by_prefix = hephaestus("trace", trace_id[:10], "--project", str(sample_repo), cwd=sample_repo)
    assert by_prefix.returncode == 0, by_prefix.stderr
    assert by_prefix.stdout.splitlines()[0] == tree.splitlines()[0]
    assert "execute_tool pytest" in by_prefix.stdout

    unknown = hephaestus("trace", "no-such-cycle", "--project", str(sample_repo), cwd=sample_repo)
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert "hephaestus: error:" in unknown.stderr and "no-such-cycle" in unknown.stderr


def test_a_piped_trace_keeps_whole_ids_and_attributes(succeeded):
    correlation_id = succeeded.result.correlation_id
    proc = hephaestus("trace", correlation_id, "--project", str(succeeded.repo), cwd=succeeded.repo)
    assert proc.returncode == 0, proc.stderr
    assert f"correlation_id={correlation_id}" in proc.stdout
    assert "reason=committed" in proc.stdout


# -- logs -------------------------------------------------------------------------------------
def test_log_lines_are_json_with_the_ids_of_the_span_they_were_written_in(sample_repo, json_logs):
    before = datetime.now(UTC)
    traced = run_traced(make_config(), sample_repo)
    lines = log_lines(json_logs)

    for line in lines:
        assert RFC3339_UTC.match(line["timestamp"]), line
        assert before.replace(microsecond=0) <= datetime.fromisoformat(line["timestamp"])
        assert line["level"] in {"debug", "info", "warning", "error"}
        assert line["logger"].startswith("hephaestus")
        assert isinstance(line["event"], str) and line["event"]
    [chosen] = [line for line in lines if line["event"] == "objective chosen"]
    agent = traced.one("invoke_agent brain")
    assert (chosen["trace_id"], chosen["span_id"]) == (agent["trace_id"], agent["span_id"])
    assert chosen["correlation_id"] == traced.result.correlation_id
    assert chosen["stage"] == "objective"
    assert chosen["objective"] == traced.row["objective"]
    [finished] = [line for line in lines if line["event"] == "cycle finished"]
    root = traced.root
    assert (finished["trace_id"], finished["span_id"]) == (root["trace_id"], root["span_id"])
    assert finished["correlation_id"] == traced.result.correlation_id
    assert finished["stage"] is None
    assert finished["outcome"] == "succeeded"


def test_the_structured_logger_wraps_a_stdlib_logger_and_drops_clashing_fields(json_logs):
    log = StructuredLogger(logging.getLogger("hephaestus.tests.wrapped"), "op-wrapped")

    log.info("wrapped", answer=42, module="a field stdlib would refuse in extra=")

    [line] = log_lines(json_logs)
    assert line["logger"] == "hephaestus.tests.wrapped"
    assert (line["event"], line["answer"], line["correlation_id"]) == ("wrapped", 42, "op-wrapped")
    assert "module" not in line


def test_the_structured_logger_facade_writes_the_same_fields(json_logs):
    tracer = TracerProvider().get_tracer("tests")
    log = StructuredLogger("hephaestus.tests.facade")
    log.set_correlation_id("op-facade")
    log.add_context(component="tests")
    with tracer.start_as_current_span("work") as span:
        log.log_operation("batch imported", level="warning", items=3)
        log.info("all good", took_s=0.5)
        log.error("gave up", error_code="E42")
    log.set_correlation_id(None)
    log.info("outside")

    imported, good, gave_up, outside = log_lines(json_logs)
    ids = (f"{span.get_span_context().trace_id:032x}", f"{span.get_span_context().span_id:016x}")
    for line in (imported, good, gave_up):
        assert (line["trace_id"], line["span_id"]) == ids
        assert line["correlation_id"] == "op-facade"
        assert line["component"] == "tests"
        assert line["logger"] == "hephaestus.tests.facade"
        assert RFC3339_UTC.match(line["timestamp"])
    assert (imported["event"], imported["level"], imported["items"]) == (
        "batch imported",
        "warning",
        3,
    )
    assert (good["event"], good["level"], good["took_s"]) == ("all good", "info", 0.5)
    assert (gave_up["event"], gave_up["level"], gave_up["error_code"]) == (
        "gave up",
        "error",
        "E42",
    )
    assert (outside["trace_id"], outside["span_id"], outside["correlation_id"]) == (
        None,
        None,
        None,
    )


# -- the trace command against Jaeger ---------------------------------------------------------
def otlp_json(spans: list[ReadableSpan], ids: str) -> dict[str, Any]:
    """Jaeger API v3's answer for ``spans``: OTLP/JSON with hex or base64 ids."""
    document = MessageToDict(encode_spans(spans))  # protobuf JSON: bytes are base64
    if ids == "hex":
        for resource_spans in document["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                for span in scope_spans["spans"]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in span:
                            span[key] = base64.b64decode(span[key]).hex()
    return {"result": document}


class FakeJaeger:
    """A real HTTP server with Jaeger's API v3 trace endpoints, holding one trace."""

    def __init__(self, trace_id: str, correlation_id: str, document: dict[str, Any]) -> None:
        self.trace_id, self.correlation_id, self.document = trace_id, correlation_id, document
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        jaeger = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                jaeger.requests.append((url.path, query))
                found = url.path == f"/api/v3/traces/{jaeger.trace_id}" or (
                    url.path == "/api/v3/traces"
                    and query.get("query.service_name") == ["hephaestus"]
                    and json.loads(query.get("query.attributes", ["{}"])[0]).get(CORRELATION)
                    == jaeger.correlation_id
                )
                status, body = (
                    (200, jaeger.document)
                    if found
                    else (404, {"error": {"httpCode": 404, "message": "trace not found"}})
                )
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeJaeger:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(params=["hex", "base64"])
def jaeger(request, succeeded, monkeypatch) -> Iterator[FakeJaeger]:
    document = otlp_json(succeeded.readable, ids=request.param)
    with FakeJaeger(succeeded.result.trace_id, succeeded.result.correlation_id, document) as server:
        yield server


def test_the_trace_command_searches_jaeger_by_correlation_id(jaeger, succeeded, capsys):
    correlation_id = succeeded.result.correlation_id
    started = datetime.now(UTC)
    assert main(["trace", correlation_id, "--jaeger-url", jaeger.url]) == 0
    tree = capsys.readouterr().out

    [(path, query)] = jaeger.requests
    assert path == "/api/v3/traces"
    assert query["query.service_name"] == ["hephaestus"]
    assert json.loads(query["query.attributes"][0]) == {CORRELATION: correlation_id}
    low, high = (
        datetime.fromisoformat(query[f"query.start_time_{end}"][0]) for end in ("min", "max")
    )
    assert low < datetime.fromtimestamp(succeeded.result.started_at, UTC) < started <= high
    assert f"trace {succeeded.result.trace_id}" in tree
    assert f"correlation_id={correlation_id}" in tree
    for name in (ROOT, "invoke_agent maestro", "execute_tool pytest", "hephaestus.commit"):
        assert name in tree


def test_the_trace_command_fetches_a_trace_id_from_jaeger_directly(jaeger, succeeded, capsys):
    trace_id = succeeded.result.trace_id
    assert main(["trace", trace_id, "--jaeger-url", jaeger.url]) == 0
    tree = capsys.readouterr().out

    assert [path for path, _ in jaeger.requests] == [f"/api/v3/traces/{trace_id}"]
    assert f"trace {trace_id}" in tree and ROOT in tree


def test_a_trace_jaeger_does_not_have_exits_1_with_a_message(jaeger, capsys):
    assert main(["trace", "0" * 32, "--jaeger-url", jaeger.url]) == 1
    assert main(["trace", "op-unknown", "--jaeger-url", jaeger.url]) == 1
    captured = capsys.readouterr()

    assert captured.out == ""
    assert captured.err.count("hephaestus: error:") == 2
    assert "op-unknown" in captured.err and jaeger.url in captured.err
