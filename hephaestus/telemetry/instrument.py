"""Small helpers the agent calls: one context manager per cycle, stage, model call and tool run.

Each helper, a method of :class:`Instruments`, opens the span that docs/observability.md
describes, records the matching metrics with an exemplar pointing at that span, and sets
the log context, so the agent's code stays free of OpenTelemetry and prometheus-client.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any

from opentelemetry import baggage, context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from hephaestus.telemetry.catalog import Metrics, default_metrics
from hephaestus.telemetry.context import cycle_context, stage_var
from hephaestus.telemetry.conventions import CORRELATION_ATTRIBUTE
from hephaestus.telemetry.spans import (
    add_event,
    error_type,
    exemplar,
    mark_error,
    set_attributes,
)
from hephaestus.telemetry.tools import ToolRun, tool_span

__all__ = [
    "ChatCall",
    "CycleSpan",
    "Instruments",
    "ToolRun",
    "add_event",
    "error_type",
    "exemplar",
    "set_attributes",
]

OTHER_MODEL = "other"
Relay = Callable[[Iterable[dict[str, Any]]], int]


@dataclass(frozen=True)
class Instruments:
    """The tracer and metrics one runner records into, and what it may record.

    Built by :func:`~hephaestus.telemetry.setup_telemetry` and passed to whatever opens
    spans (the way the OpenTelemetry SDK takes ``tracer_provider=``): two runners in one
    process each keep their own tracer. :meth:`default` records through the global
    OpenTelemetry API into the default registry.

    ``models`` bounds the model label; ``relay`` hands spans recorded inside tool
    subprocesses to our exporters (without it, tool runs are not traced from the inside);
    ``test_spans`` says which tests get a span of their own there (``failed`` or ``all``).
    """

    tracer: Tracer
    metrics: Metrics
    capture_content: bool = False
    models: frozenset[str] = frozenset()
    relay: Relay | None = None
    test_spans: str = "failed"

    @classmethod
    def default(cls) -> Instruments:
        """The global OpenTelemetry tracer and the catalog on the default registry."""
        return cls(trace.get_tracer("hephaestus"), default_metrics())

    def cycle_span(self, correlation_id: str, cycle_number: int) -> ContextManager[CycleSpan]:
        """Open ``invoke_workflow hephaestus.cycle`` as a new trace, with the id in baggage."""
        return _cycle_span(self.tracer, correlation_id, cycle_number)

    def record_cycle(
        self,
        outcome: str,
        reason: str,
        duration: float,
        span: CycleSpan,
        *,
        failures: int,
        recovered_after: float | None = None,
    ) -> None:
        """Count the cycle, observe its duration, and show the failure streak.

        ``failures`` is the streak after this cycle; ``recovered_after`` the seconds from
        the first failure of the streak this success ended (MTTR), if it ended one.
        """
        sample = exemplar(span.span)
        metrics = self.metrics
        metrics.cycles.labels(outcome=outcome, reason=reason).inc(exemplar=sample)
        metrics.cycle_duration.labels(outcome=outcome).observe(max(0.0, duration), exemplar=sample)
        if recovered_after is not None:
            metrics.recovery.observe(recovered_after, exemplar=sample)
        metrics.consecutive_failures.set(failures)

    def failure_streak(self, failures: int) -> None:
        """Show a failure streak resumed from memory after a restart."""
        self.metrics.consecutive_failures.set(failures)

    def stage_span(self, stage: str, agent: str | None = None) -> ContextManager[Span]:
        """``invoke_agent {agent}`` for LLM-backed stages, ``hephaestus.{stage}`` otherwise."""
        return _StageSpan(self, stage, agent)

    def chat_span(
        self,
        provider: str,
        model: str,
        server_address: str | None = None,
        server_port: int | None = None,
    ) -> ContextManager[ChatCall]:
        """``chat {model}`` (CLIENT) with the GenAI attributes and the duration metric."""
        return _chat_span(self, provider, model, server_address, server_port)

    def tool_span(self, tool: str) -> ContextManager[ToolRun]:
        """``execute_tool {tool}`` around a subprocess run."""
        return tool_span(self, tool)

    def model_label(self, model: str) -> str:
        """``model`` when configured, else ``other``: the label's values stay bounded."""
        return model if model in self.models else OTHER_MODEL


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
def _cycle_span(tracer: Tracer, correlation_id: str, cycle_number: int) -> Iterator[CycleSpan]:
    ctx = baggage.set_baggage(CORRELATION_ATTRIBUTE, correlation_id, context.Context())
    token = context.attach(ctx)
    try:
        with (
            cycle_context(correlation_id),
            tracer.start_as_current_span(
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


class _StageSpan:
    """The stage's span, its log context and its two histograms, entered as one manager.

    A plain class rather than a generator wrapped around the tracer's own manager: a
    cycle enters many stages, and the two nested generators cost more than the span.
    """

    __slots__ = ("_agent", "_instruments", "_span", "_stage", "_started", "_tokens")

    def __init__(self, instruments: Instruments, stage: str, agent: str | None) -> None:
        self._instruments, self._stage, self._agent = instruments, stage, agent

    def __enter__(self) -> Span:
        stage, agent = self._stage, self._agent
        attributes: dict[str, Any] = {"hephaestus.stage": stage}
        if agent:
            attributes["gen_ai.operation.name"] = "invoke_agent"
            attributes["gen_ai.agent.name"] = agent
        self._started = time.perf_counter()
        span = self._instruments.tracer.start_span(
            f"invoke_agent {agent}" if agent else f"hephaestus.{stage}", attributes=attributes
        )
        self._span = span
        # the log context's stage, then the span as the current one
        self._tokens = (stage_var.set(stage), context.attach(trace.set_span_in_context(span)))
        return span

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        span, (stage_token, context_token) = self._span, self._tokens
        outcome = "ok"
        if exc is not None:
            outcome = _stage_outcome(exc)
            span.set_attribute("hephaestus.stage.outcome", outcome)
            if outcome != "rejected":  # a decision not to change anything is not an error
                mark_error(span, exc)
        context.detach(context_token)
        stage_var.reset(stage_token)
        span.end()
        elapsed = time.perf_counter() - self._started
        sample = exemplar(span)
        metrics, stage = self._instruments.metrics, self._stage
        metrics.stage_duration.labels(stage=stage, outcome=outcome).observe(
            elapsed, exemplar=sample
        )
        if self._agent:
            metrics.agent_response.labels(agent=self._agent).observe(elapsed, exemplar=sample)


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
    instruments: Instruments

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
        if self.instruments.capture_content:
            span.set_attribute("gen_ai.input.messages", prompt)
            span.set_attribute(
                "gen_ai.output.messages", json.dumps([{"role": "assistant", "content": text}])
            )
        else:
            span.set_attribute("hephaestus.prompt.sha256", _digest(prompt))
            span.set_attribute("hephaestus.prompt.length", len(prompt))
            span.set_attribute("hephaestus.completion.sha256", _digest(text))
            span.set_attribute("hephaestus.completion.length", len(text))
        labels = self.labels()
        sample = exemplar(span)
        for token_type, count in (("input", input_tokens), ("output", output_tokens)):
            self.instruments.metrics.genai_tokens.labels(
                **labels, gen_ai_token_type=token_type
            ).observe(count, exemplar=sample)

    def answer_checked(self, *, valid: bool) -> None:
        """Whether the answer was a JSON object that fits the role's schema."""
        self.span.set_attribute("hephaestus.answer.valid", valid)

    def labels(self) -> dict[str, str]:
        """The GenAI metric labels of this call (an unconfigured model counts as ``other``)."""
        return {
            "gen_ai_operation_name": "chat",
            "gen_ai_provider_name": self.provider,
            "gen_ai_request_model": self.instruments.model_label(self.model),
        }


@contextlib.contextmanager
def _chat_span(
    instruments: Instruments,
    provider: str,
    model: str,
    server_address: str | None,
    server_port: int | None,
) -> Iterator[ChatCall]:
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
    failure = ""
    with instruments.tracer.start_as_current_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        call = ChatCall(span, provider, model, instruments)
        try:
            yield call
        except BaseException as exc:
            failure = mark_error(span, exc)
            raise
        finally:
            instruments.metrics.genai_duration.labels(**call.labels(), error_type=failure).observe(
                time.perf_counter() - started, exemplar=exemplar(span)
            )
