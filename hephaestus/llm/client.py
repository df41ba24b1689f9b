"""Route each agent role to its models: primary first, then the fallbacks, in config order."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from hephaestus import telemetry
from hephaestus.llm.base import Completion, LLMError, Message, Provider, Role


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


_USAGE: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("hephaestus_usage",
                                                                      default=None)


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

    def __init__(self, provider: Provider, models: Mapping[str, Sequence[str]]) -> None:
        self.provider = provider
        self._models = {Role(role): tuple(names) for role, names in models.items()}

    def models_for(self, role: Role) -> tuple[str, ...]:
        """The ordered models configured for ``role``."""
        return self._models[role]

    @property
    def all_models(self) -> tuple[str, ...]:
        """Every configured model once (the bounded set of model label values)."""
        return tuple(dict.fromkeys(m for names in self._models.values() for m in names))

    def complete(self, role: Role, messages: Sequence[Message]) -> Completion:
        """Ask the role's models in order until one answers; raise the last error otherwise."""
        last: LLMError | None = None
        for model in self._models[role]:
            try:
                completion = self._call(role, model, messages)
            except LLMError as exc:
                last = exc
                continue
            usage = _USAGE.get()
            if usage is not None:
                usage.add(completion)
            return completion
        assert last is not None
        raise last

    def _call(self, role: Role, model: str, messages: Sequence[Message]) -> Completion:
        provider = self.provider
        with telemetry.chat_span(provider.name, model, provider.server_address,
                                 provider.server_port) as call:
            completion = provider.chat(role, model, messages)
            call.completed(messages, completion.text, completion.response_model,
                           completion.input_tokens, completion.output_tokens)
        return completion

    def close(self) -> None:
        """Close the provider."""
        self.provider.close()
