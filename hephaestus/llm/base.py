"""The provider interface every model backend implements, and the values it exchanges."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Role(enum.StrEnum):
    """The agent roles that ask a model (also ``gen_ai.agent.name``)."""

    BRAIN = "brain"
    ARCHITECT = "architect"
    CODE_REVIEWER = "code_reviewer"
    MAESTRO = "maestro"


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: str
    content: str


@dataclass(frozen=True)
class Completion:
    """A model's answer with what it cost."""

    text: str
    provider: str
    request_model: str
    response_model: str
    input_tokens: int = 0
    output_tokens: int = 0


class LLMError(Exception):
    """A model call failed; ``error_type`` is a low-cardinality label (``timeout``, ``http_500``…).

    ``retryable`` marks transient failures (timeouts, connection errors, 429, 5xx);
    ``retry_after`` carries the server's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.retryable = retryable
        self.retry_after = retry_after


class LLMTimeout(LLMError):
    """The request timed out (transient)."""


class LLMConnectionError(LLMError):
    """The endpoint could not be reached (transient)."""


class LLMRateLimited(LLMError):
    """HTTP 429 (transient; may carry ``retry_after``)."""


class LLMServerError(LLMError):
    """HTTP 5xx (transient)."""


def llm_error(message: str, *, error_type: str, retry_after: float | None = None) -> LLMError:
    """The :class:`LLMError` subclass for ``error_type``; transient kinds are retryable.

    Distinct classes make stamina's ``error_type`` label of ``stamina_retries_total`` say
    what was retried.
    """
    if error_type == "timeout":
        return LLMTimeout(message, error_type=error_type, retryable=True)
    if error_type == "connection_error":
        return LLMConnectionError(message, error_type=error_type, retryable=True)
    if error_type == "http_429":
        return LLMRateLimited(
            message, error_type=error_type, retryable=True, retry_after=retry_after
        )
    if error_type.startswith("http_5"):
        return LLMServerError(
            message, error_type=error_type, retryable=True, retry_after=retry_after
        )
    return LLMError(message, error_type=error_type)


TRANSIENT_ERRORS = (LLMTimeout, LLMConnectionError, LLMRateLimited, LLMServerError)


class Provider(Protocol):
    """A model backend: one request to one model, no retries and no fallback."""

    name: str
    server_address: str | None
    server_port: int | None

    def chat(
        self, role: Role, model: str, messages: Sequence[Message], timeout: float | None = None
    ) -> Completion:
        """Send ``messages`` to ``model`` and return its answer, or raise :class:`LLMError`.

        ``timeout`` (seconds) overrides the configured request timeout when the cycle's
        deadline leaves less.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
