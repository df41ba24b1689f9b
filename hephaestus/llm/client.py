"""Route each agent role to its models: primary first, then the fallbacks, in config order.

Each model call is retried with stamina (transient failures only), guarded by the model's
circuit breaker (an open breaker sends the role to its next model at once, with no network
call) and bounded by the current stage's deadline. An answer cut off at the token limit
fails as ``truncated`` (the next model is asked); an answer that does not fit the role's
schema raises :class:`~hephaestus.llm.base.InvalidAnswer` (no other model is asked).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hephaestus import telemetry
from hephaestus.config import LLMConfig, ResilienceConfig
from hephaestus.llm.base import (
    TRANSIENT_ERRORS,
    Completion,
    InvalidAnswer,
    LLMError,
    Message,
    Provider,
    Role,
)
from hephaestus.llm.jsontext import InvalidModelOutput, extract_json
from hephaestus.llm.schema import AnswerError, AnswerSchema
from hephaestus.resilience.breaker import CircuitBreaker, Transition
from hephaestus.resilience.retry import RetryPolicy, call_with_retries
from hephaestus.resilience.timeouts import Deadline, current_deadline

T = TypeVar("T")
# a failed request whose endpoint answered proves it is up; these prove it is not
_AVAILABILITY_ERRORS = ("invalid_response", "timeout")
_LLM_DEFAULTS, _RESILIENCE_DEFAULTS = LLMConfig(), ResilienceConfig()


@dataclass
class Usage:
    """LLM calls and tokens spent inside one :func:`usage_scope` (one cycle)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    models: list[str] = field(default_factory=list)

    def add(self, completion: Completion) -> None:
        """Count one successful completion."""
        self.calls += 1
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        if completion.response_model not in self.models:
            self.models.append(completion.response_model)


_USAGE: contextvars.ContextVar[Usage | None] = contextvars.ContextVar(
    "hephaestus_usage", default=None
)


@contextlib.contextmanager
def usage_scope() -> Iterator[Usage]:
    """Collect the usage of every completion made inside the block."""
    usage = Usage()
    token = _USAGE.set(usage)
    try:
        yield usage
    finally:
        _USAGE.reset(token)


class RoleModels:
    """The models that answer each agent role, called through one provider."""

    def __init__(
        self,
        provider: Provider,
        models: Mapping[str, Sequence[str]],
        *,
        policy: RetryPolicy | None = None,
        request_timeout: float = _LLM_DEFAULTS.request_timeout,
        breaker_threshold: int = _RESILIENCE_DEFAULTS.breaker_failure_threshold,
        breaker_reset: float = _RESILIENCE_DEFAULTS.breaker_reset_timeout,
        context_windows: Mapping[str, int] | None = None,
        max_tokens: int = 0,
        clock: Callable[[], float] = time.monotonic,
        instruments: telemetry.Instruments | None = None,
    ) -> None:
        self.provider = provider
        self.instruments = instruments or telemetry.Instruments.default()
        self.policy = policy or RetryPolicy()
        self.request_timeout = request_timeout
        self.max_tokens = max_tokens
        self._windows = dict(context_windows or {})
        self._models = {Role(role): tuple(names) for role, names in models.items()}
        self.breakers = {
            model: CircuitBreaker(
                f"{provider.name}/{model}",
                failure_threshold=breaker_threshold,
                reset_timeout=breaker_reset,
                clock=clock,
                listeners=[self._report_transition],
            )
            for model in self.all_models
        }
        for breaker in self.breakers.values():
            telemetry.declare_breaker(self.instruments.metrics, breaker.name)
        telemetry.declare_retries(
            self.instruments.metrics,
            RETRIED_CALLABLE,
            [telemetry.qualified_name(e) for e in TRANSIENT_ERRORS],
        )

    def _report_transition(self, transition: Transition) -> None:
        telemetry.breaker_transition(
            self.instruments.metrics,
            transition.breaker,
            transition.from_state.value,
            transition.to_state.value,
            transition.failures,
        )

    def models_for(self, role: Role) -> tuple[str, ...]:
        """The ordered models configured for ``role``."""
        return self._models[role]

    def context_window(self, role: Role) -> int | None:
        """The smallest context window among ``role``'s models; ``None`` when unbounded.

        One prompt goes to the primary and, if it fails, to the fallbacks: it must fit all.
        """
        windows = [self._windows[m] for m in self._models[role] if m in self._windows]
        return min(windows) if windows else None

    @property
    def all_models(self) -> tuple[str, ...]:
        """Every configured model once (the bounded set of model label values)."""
        return tuple(dict.fromkeys(m for names in self._models.values() for m in names))

    def open_roles(self) -> list[str]:
        """Roles whose every model's breaker refuses calls now (their stage would fail fast).

        A breaker whose reset timeout has passed is ready for its probe, so it does not count.
        """
        return [
            role.value
            for role, names in self._models.items()
            if not any(self.breakers[m].would_allow() for m in names)
        ]

    def complete(
        self, role: Role, messages: Sequence[Message], schema: AnswerSchema[Any] | None = None
    ) -> Completion:
        """Ask the role's models in order until one answers; return its completion.

        A model whose breaker is open is skipped without a network call. Raises the last
        model's error, or ``LLMError(error_type="circuit_open")`` when every breaker of the
        role is open; with ``schema``, :class:`InvalidAnswer` when the answer does not fit.
        """
        return self._ask(role, messages, schema)[0]

    def ask(self, role: Role, messages: Sequence[Message], schema: AnswerSchema[T]) -> T:
        """Like :meth:`complete`, asking for (and returning) an answer that fits ``schema``."""
        answer: T = self._ask(role, messages, schema)[1]
        return answer

    def _ask(
        self, role: Role, messages: Sequence[Message], schema: AnswerSchema[Any] | None
    ) -> tuple[Completion, Any]:
        last: LLMError | None = None
        for model in self._models[role]:
            if not self.breakers[model].would_allow():
                continue
            try:
                return self._call(role, model, messages, current_deadline(), schema)
            except LLMError as exc:
                last = exc
        if last is None:
            raise LLMError(
                f"{role}: every circuit breaker of this role is open", error_type="circuit_open"
            )
        raise last

    def _call(
        self,
        role: Role,
        model: str,
        messages: Sequence[Message],
        deadline: Deadline,
        schema: AnswerSchema[Any] | None,
    ) -> tuple[Completion, Any]:
        provider = self.provider
        with self.instruments.chat_span(
            provider.name, model, provider.server_address, provider.server_port
        ) as call:
            budget = deadline.cap(self.policy.timeout)
            if budget <= 0:
                raise LLMError(
                    f"{model}: no time left before the {deadline.what}", error_type="deadline"
                )
            completion = call_with_retries(
                self._attempt,
                self.policy,
                budget,
                deadline,
                role,
                model,
                messages,
                deadline,
                schema,
            )
            call.completed(
                messages,
                completion.text,
                completion.response_model,
                completion.input_tokens,
                completion.output_tokens,
                finish_reason=completion.finish_reason,
                response_format=completion.response_format,
            )
            usage = _USAGE.get()
            if usage is not None:
                usage.add(completion)
            _check_finish(completion)
            if schema is None:
                return completion, None
            try:
                answer = _parse_answer(schema, completion.text)
            except InvalidAnswer:
                call.answer_checked(valid=False)
                raise
            call.answer_checked(valid=True)
        return completion, answer

    def _attempt(
        self,
        role: Role,
        model: str,
        messages: Sequence[Message],
        deadline: Deadline,
        schema: AnswerSchema[Any] | None = None,
    ) -> Completion:
        """One HTTP request through the model's breaker; stamina names retries after this."""
        remaining = deadline.cap(self.request_timeout)
        if remaining <= 0:
            raise LLMError(
                f"{model}: no time left before the {deadline.what}", error_type="deadline"
            )
        breaker = self.breakers[model]
        if not breaker.allow():
            raise LLMError(
                f"{model}: circuit breaker {breaker.name} is open", error_type="circuit_open"
            )
        try:
            completion = self.provider.chat(role, model, messages, timeout=remaining, schema=schema)
        except LLMError as exc:
            # a 4xx means the endpoint is up: only availability failures trip the breaker;
            # endpoint_busy sent no request, so it proves nothing either way
            if exc.retryable or exc.error_type in _AVAILABILITY_ERRORS:
                breaker.record_failure()
            elif exc.error_type != "endpoint_busy":
                breaker.record_success()
            raise
        except BaseException:  # an abort or a bug: no answer, so no proof the endpoint is up
            breaker.record_failure()
            raise
        breaker.record_success()
        return completion

    def close(self) -> None:
        """Close the provider."""
        self.provider.close()


def _check_finish(completion: Completion) -> None:
    """An answer the server cut off is no answer: ``truncated`` (or ``content_filter``)."""
    model = completion.request_model
    if completion.finish_reason == "length":
        raise LLMError(
            f"{model}: the answer was cut off at the token limit after "
            f"{completion.output_tokens} tokens (finish_reason=length); raise llm.max_tokens, "
            "or use a model that answers more briefly",
            error_type="truncated",
        )
    if completion.finish_reason == "content_filter":
        raise LLMError(
            f"{model}: the server's content filter withheld the answer "
            "(finish_reason=content_filter)",
            error_type="content_filter",
        )


def _parse_answer(schema: AnswerSchema[T], text: str) -> T:
    """The answer in ``text``: its first JSON object, checked against ``schema``."""
    try:
        data = extract_json(text)
    except InvalidModelOutput as exc:
        raise InvalidAnswer(str(exc), error_type="invalid_json") from None
    try:
        return schema.validate(data)
    except AnswerError as exc:
        raise InvalidAnswer(f"{exc} ({schema.name} answer)", error_type="invalid_answer") from None


RETRIED_CALLABLE = telemetry.qualified_name(RoleModels._attempt)
"""The ``callable`` label of ``stamina_retries_total`` for model calls."""
