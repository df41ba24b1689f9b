"""Small helpers the agent calls: one context manager per cycle, stage, model call and tool run.

Each helper opens the span that docs/observability.md describes, records the matching
metrics with an exemplar pointing at that span, and sets the log context, so the agent's
code stays free of OpenTelemetry and prometheus-client.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import baggage, context, trace
from opentelemetry.propagate import inject
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from hephaestus.telemetry import catalog
from hephaestus.telemetry.context import cycle_context, stage_context
from hephaestus.telemetry.conventions import CORRELATION_ATTRIBUTE, SPAN_FILE_ENV
from hephaestus.telemetry.spanfile import read_span_file

OTHER_MODEL = "other"


@dataclass
class _State:
    tracer: Tracer = field(default_factory=lambda: trace.get_tracer("hephaestus"))
    capture_content: bool = False
    models: frozenset[str] = frozenset()
    failure_streak: int = 0
    streak_started: float | None = None
    relay: Callable[[Iterable[dict[str, Any]]], int] | None = None


STATE = _State()


def configure(
    tracer: Tracer,
    *,
    capture_content: bool,
    models: Sequence[str],
    relay: Callable[[Iterable[dict[str, Any]]], int] | None = None,
) -> None:
    """Use ``tracer`` for every span; bound the model label to ``models``.

    ``relay`` hands spans recorded inside tool subprocesses to our exporters; without it,
    tool runs are not traced from the inside.
    """
    STATE.tracer = tracer
    STATE.capture_content = capture_content
    STATE.models = frozenset(models)
    STATE.relay = relay


def exemplar(span: Span | None = None) -> dict[str, str] | None:
    """``{trace_id, span_id}`` of ``span`` (default: the current one), if it is recording."""
    span_context = (span or trace.get_current_span()).get_span_context()
    if not span_context.is_valid or not span_context.trace_flags.sampled:
        return None
    return {
        "trace_id": format(span_context.trace_id, "032x"),
        "span_id": format(span_context.span_id, "016x"),
    }


def _mark_error(span: Span, exc: BaseException, error_type: str) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
    span.set_attribute("error.type", error_type)


@dataclass
class CycleSpan:
    """The root span of a cycle; :meth:`finish` stamps the outcome and the totals."""

    span: Span

    @property
    def trace_id(self) -> str:
        """The cycle's trace id (hex), or ``""`` when tracing is off."""
        span_context = self.span.get_span_context()
        return format(span_context.trace_id, "032x") if span_context.is_valid else ""

    def finish(self, outcome: str, reason: str, totals: Mapping[str, int | str]) -> None:
        """Set outcome, reason and totals; a failed cycle's root span gets status ERROR."""
        self.span.set_attribute("hephaestus.outcome", outcome)
        self.span.set_attribute("hephaestus.reason", reason)
        for key, value in totals.items():
            self.span.set_attribute(f"hephaestus.{key}", value)
        if outcome == "failed":
            self.span.set_status(Status(StatusCode.ERROR, reason))
            self.span.set_attribute("error.type", reason)


@contextlib.contextmanager
def cycle_span(correlation_id: str, cycle_number: int) -> Iterator[CycleSpan]:
    """Open ``invoke_workflow hephaestus.cycle`` as a new trace, with the id in baggage."""
    ctx = baggage.set_baggage(CORRELATION_ATTRIBUTE, correlation_id, context.Context())
    token = context.attach(ctx)
    try:
        with (
            cycle_context(correlation_id),
            STATE.tracer.start_as_current_span(
                "invoke_workflow hephaestus.cycle",
                kind=SpanKind.INTERNAL,
                attributes={
                    "gen_ai.operation.name": "invoke_workflow",
                    CORRELATION_ATTRIBUTE: correlation_id,
                    "hephaestus.cycle.number": cycle_number,
                },
                record_exception=False,
                set_status_on_exception=False,
            ) as span,
        ):
            yield CycleSpan(span)
    finally:
        context.detach(token)


def resume_failure_streak(failures: int, started_at: float | None) -> None:
    """Continue a failure streak recorded before a restart, so MTTR spans the restart."""
    STATE.failure_streak = failures
    STATE.streak_started = started_at if failures else None
    catalog.CONSECUTIVE_FAILURES.set(failures)


def record_cycle(
    outcome: str, reason: str, started_at: float, finished_at: float, span: CycleSpan
) -> None:
    """Count the cycle, observe its duration and update the failure streak (MTTR).

    A success that ends a streak of failed cycles observes ``hephaestus_recovery_seconds``:
    from the start of the streak's first failed cycle to the end of this one.
    """
    sample = exemplar(span.span)
    catalog.CYCLES.labels(outcome=outcome, reason=reason).inc(exemplar=sample)
    catalog.CYCLE_DURATION.labels(outcome=outcome).observe(
        max(0.0, finished_at - started_at), exemplar=sample
    )
    if outcome == "failed":
        if STATE.failure_streak == 0:
            STATE.streak_started = started_at
        STATE.failure_streak += 1
    elif outcome == "succeeded":
        if STATE.failure_streak and STATE.streak_started is not None:
            catalog.RECOVERY.observe(finished_at - STATE.streak_started, exemplar=sample)
        STATE.failure_streak, STATE.streak_started = 0, None
    catalog.CONSECUTIVE_FAILURES.set(STATE.failure_streak)


@contextlib.contextmanager
def stage_span(stage: str, agent: str | None = None) -> Iterator[Span]:
    """``invoke_agent {agent}`` for LLM-backed stages, ``hephaestus.{stage}`` for the others."""
    name = f"invoke_agent {agent}" if agent else f"hephaestus.{stage}"
    attributes: dict[str, Any] = {"hephaestus.stage": stage}
    if agent:
        attributes |= {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
    started = time.perf_counter()
    outcome = "ok"
    with (
        stage_context(stage),
        STATE.tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span,
    ):
        try:
            yield span
        except BaseException as exc:
            outcome = _stage_outcome(exc)
            span.set_attribute("hephaestus.stage.outcome", outcome)
            if outcome != "rejected":  # a decision not to change anything is not an error
                _mark_error(span, exc, getattr(exc, "error_type", None) or type(exc).__name__)
            raise
        finally:
            elapsed = time.perf_counter() - started
            sample = exemplar(span)
            catalog.STAGE_DURATION.labels(stage=stage, outcome=outcome).observe(
                elapsed, exemplar=sample
            )
            if agent:
                catalog.AGENT_RESPONSE.labels(agent=agent).observe(elapsed, exemplar=sample)


def _stage_outcome(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    outcome = getattr(reason, "outcome", None)
    if outcome is not None:
        return str(getattr(outcome, "value", outcome))
    return "aborted" if isinstance(exc, KeyboardInterrupt) else "failed"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class ChatCall:
    """The span of one model call; report the answer or the error through it."""

    span: Span
    provider: str
    model: str

    def completed(
        self,
        messages: Sequence[Any],
        text: str,
        response_model: str,
        input_tokens: int,
        output_tokens: int,
        *,
        finish_reason: str | None = None,
        response_format: str | None = None,
    ) -> None:
        """Record the response model, token usage, finish reason and the content (or its hash).

        ``response_format`` is the structured-output mode the answer was asked in.
        """
        span = self.span
        span.set_attribute("gen_ai.response.model", response_model)
        span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        if finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
        if response_format:
            span.set_attribute("hephaestus.response_format", response_format)
        prompt = json.dumps([{"role": m.role, "content": m.content} for m in messages])
        if STATE.capture_content:
            span.set_attribute("gen_ai.input.messages", prompt)
            span.set_attribute(
                "gen_ai.output.messages", json.dumps([{"role": "assistant", "content": text}])
            )
        else:
            span.set_attribute("hephaestus.prompt.sha256", _digest(prompt))
            span.set_attribute("hephaestus.prompt.length", len(prompt))
            span.set_attribute("hephaestus.completion.sha256", _digest(text))
            span.set_attribute("hephaestus.completion.length", len(text))
        labels = self._labels()
        sample = exemplar(span)
        for token_type, count in (("input", input_tokens), ("output", output_tokens)):
            catalog.GENAI_TOKENS.labels(**labels, gen_ai_token_type=token_type).observe(
                count, exemplar=sample
            )

    def answer_checked(self, *, valid: bool) -> None:
        """Whether the answer was a JSON object that fits the role's schema."""
        self.span.set_attribute("hephaestus.answer.valid", valid)

    def _labels(self) -> dict[str, str]:
        model = self.model if self.model in STATE.models else OTHER_MODEL
        return {
            "gen_ai_operation_name": "chat",
            "gen_ai_provider_name": self.provider,
            "gen_ai_request_model": model,
        }


@contextlib.contextmanager
def chat_span(
    provider: str, model: str, server_address: str | None = None, server_port: int | None = None
) -> Iterator[ChatCall]:
    """``chat {model}`` (CLIENT) with the GenAI attributes and the operation-duration metric."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    if server_address:
        attributes["server.address"] = server_address
    if server_port:
        attributes["server.port"] = server_port
    started = time.perf_counter()
    error_type = ""
    with STATE.tracer.start_as_current_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        call = ChatCall(span, provider, model)
        try:
            yield call
        except BaseException as exc:
            error_type = getattr(exc, "error_type", None) or type(exc).__name__
            _mark_error(span, exc, error_type)
            raise
        finally:
            catalog.GENAI_DURATION.labels(**call._labels(), error_type=error_type).observe(
                time.perf_counter() - started, exemplar=exemplar(span)
            )


def add_event(name: str, attributes: Mapping[str, Any]) -> None:
    """Add an event to the current span (retries, breaker transitions)."""
    trace.get_current_span().add_event(name, dict(attributes))


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Set attributes on the current span (a stage's findings: test counts, prompt fitting)."""
    trace.get_current_span().set_attributes(dict(attributes))


@dataclass
class ToolRun:
    """The span of a tool subprocess; :meth:`env` carries the trace into the child."""

    span: Span
    span_file: Path | None = None

    def env(self) -> dict[str, str]:
        """``TRACEPARENT``/``BAGGAGE`` and the file the child records its spans in."""
        if STATE.relay is None:
            return {}
        if self.span_file is None:
            handle, name = tempfile.mkstemp(prefix="hephaestus-spans-", suffix=".jsonl")
            os.close(handle)
            self.span_file = Path(name)
        carrier: dict[str, str] = {}
        inject(carrier)
        return {
            SPAN_FILE_ENV: str(self.span_file),
            **{key.upper(): value for key, value in carrier.items()},
        }

    def pytest_args(self) -> list[str]:
        """Arguments that load the plugin joining this trace from inside pytest."""
        return ["-p", "hephaestus.telemetry.pytest_plugin"] if STATE.relay is not None else []

    def result(self, result: str, exit_code: int | None = None) -> None:
        """Count the run by ``result`` (passed, failed, no_tests, timeout, error)."""
        self.span.set_attribute("hephaestus.tool.result", result)
        if exit_code is not None:
            self.span.set_attribute("process.exit.code", exit_code)
        if result not in ("passed", "no_tests"):
            self.span.set_status(Status(StatusCode.ERROR, result))
            self.span.set_attribute("error.type", result)
        catalog.VALIDATION_TESTS.labels(result=result).inc(exemplar=exemplar(self.span))

    def collect(self) -> None:
        """Relay the child's spans to our exporters and remove its file."""
        if self.span_file is None or STATE.relay is None:
            return
        with contextlib.suppress(OSError):
            STATE.relay(read_span_file(self.span_file))
        self.span_file.unlink(missing_ok=True)


@contextlib.contextmanager
def tool_span(tool: str) -> Iterator[ToolRun]:
    """``execute_tool {tool}`` around a subprocess run."""
    with STATE.tracer.start_as_current_span(
        f"execute_tool {tool}",
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        run = ToolRun(span)
        try:
            yield run
        except BaseException as exc:
            _mark_error(span, exc, getattr(exc, "error_type", None) or type(exc).__name__)
            raise
        finally:
            run.collect()
