"""Retries with stamina: which failures are retried, how long to wait, and a thin decorator.

No hand-written retry loops: every retry goes through stamina, so ``stamina_retries_total``
and the on-retry hooks (span event, log line) see each one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import stamina

from hephaestus.config import ResilienceConfig
from hephaestus.resilience.timeouts import NO_DEADLINE, Deadline

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How one model call is retried; built from ``[resilience]``."""

    attempts: int = 3
    timeout: float = 60.0
    wait_initial: float = 0.5
    wait_max: float = 10.0
    wait_jitter: float = 1.0
    max_retry_after: float = 60.0

    @classmethod
    def from_config(cls, config: ResilienceConfig) -> RetryPolicy:
        """The policy of a ``[resilience]`` section."""
        return cls(
            attempts=config.retry_attempts,
            timeout=config.retry_timeout,
            wait_initial=config.retry_wait_initial,
            wait_max=config.retry_wait_max,
            wait_jitter=config.retry_wait_jitter,
            max_retry_after=config.max_retry_after,
        )


def transient(
    max_retry_after: float, deadline: Deadline = NO_DEADLINE
) -> Callable[[Exception], bool | float]:
    """Stamina's ``on`` hook: retry what is marked ``retryable``; honour ``retry_after``.

    Returning a float tells stamina to wait exactly that long (the server's Retry-After,
    capped by ``max_retry_after``); ``False`` lets the error through at once (4xx, malformed
    output…), as does a Retry-After that would outlast ``deadline``.
    """

    def decide(exc: Exception) -> bool | float:
        if not getattr(exc, "retryable", False):
            return False
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is None:
            return True
        wait = min(float(retry_after), max_retry_after)
        return wait if wait < deadline.remaining() else False

    return decide


def call_with_retries(
    fn: Callable[P, T],
    policy: RetryPolicy,
    timeout: float,
    deadline: Deadline,
    *args: Any,
    **kwargs: Any,
) -> T:
    """Call ``fn(*args)`` under ``policy``; all attempts stay within ``timeout`` seconds."""
    retrying = stamina.retry(
        on=transient(policy.max_retry_after, deadline),
        attempts=policy.attempts,
        timeout=dt.timedelta(seconds=max(timeout, 0.001)),
        wait_initial=policy.wait_initial,
        wait_max=policy.wait_max,
        wait_jitter=policy.wait_jitter,
    )
    return retrying(fn)(*args, **kwargs)


def retry(
    max_attempts: int = 3,
    backoff_factor: float = 2.0,
    exceptions: type[Exception] | tuple[type[Exception], ...] = (Exception,),
    *,
    wait_initial: float = 0.1,
    wait_max: float = 5.0,
    wait_jitter: float = 1.0,
    timeout: float | None = 45.0,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Retry the decorated function (sync or async) on ``exceptions`` with exponential backoff.

    A thin decorator over :func:`stamina.retry` with the names callers
    know from other retry libraries: ``backoff_factor`` is the base of the exponential backoff. Retries are instrumented
    like every other stamina retry.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if backoff_factor < 1:
        raise ValueError(f"backoff_factor must be >= 1, got {backoff_factor}")
    return stamina.retry(
        on=exceptions,
        attempts=max_attempts,
        timeout=timeout,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_jitter=wait_jitter,
        wait_exp_base=backoff_factor,
    )
