"""The provider interface every model backend implements, and the values it exchanges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hephaestus.config import Role
from hephaestus.llm.schema import AnswerSchema

__all__ = [
    "TRANSIENT_ERRORS",
    "Completion",
    "InvalidAnswer",
    "LLMConnectionError",
    "LLMError",
    "LLMRateLimited",
    "LLMServerError",
    "LLMTimeout",
    "Message",
    "Provider",
    "Role",
    "llm_error",
]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: str
    content: str


@dataclass(frozen=True)
class Completion:
    """A model's answer with what it cost.

    ``finish_reason`` is the server's (``stop``, ``length``…; ``None`` if it sent none) and
    ``response_format`` the structured-output mode the answer was asked for
    (``json_schema``, ``json_object`` or ``off``).
    """

    text: str
    provider: str
    request_model: str
    response_model: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    response_format: str = "off"


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


class InvalidAnswer(ValueError):
    """The model answered, but not what was asked; not retried, and no fallback is asked.

    ``error_type`` is ``invalid_json`` (no JSON object in the answer) or ``invalid_answer``
    (a field of the answer's schema is missing or has the wrong type).
    """

    def __init__(self, message: str, *, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


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
"""The failures a model call is retried on (what :func:`llm_error` marks ``retryable``)."""


class Provider(Protocol):
    """A model backend: one request to one model, no retries and no fallback."""

    name: str
    server_address: str | None
    server_port: int | None

    def chat(
        self,
        role: Role,
        model: str,
        messages: Sequence[Message],
        timeout: float | None = None,
        schema: AnswerSchema[Any] | None = None,
    ) -> Completion:
        """Send ``messages`` to ``model`` and return its answer, or raise :class:`LLMError`.

        ``timeout`` (seconds) overrides the configured request timeout when the cycle's
        deadline leaves less; ``schema`` is the answer's JSON schema, which a provider that
        supports structured outputs asks the model to follow.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
