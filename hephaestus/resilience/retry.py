"""Retries with stamina: which failures are retried, how long to wait, and a thin decorator.

No hand-written retry loops: every retry goes through stamina, so ``stamina_retries_total``
and the on-retry hooks (span event, log line) see each one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from hephaestus.config import ResilienceConfig
from hephaestus.resilience.timeouts import NO_DEADLINE, Deadline

P = ParamSpec("P")
T = TypeVar("T")


_DEFAULTS = ResilienceConfig()


@dataclass(frozen=True)
class RetryPolicy:
    """How one model call is retried; built from ``[resilience]``, with its defaults."""

    attempts: int = _DEFAULTS.retry_attempts
    timeout: float = _DEFAULTS.retry_timeout
    wait_initial: float = _DEFAULTS.retry_wait_initial
    wait_max: float = _DEFAULTS.retry_wait_max
    wait_jitter: float = _DEFAULTS.retry_wait_jitter
    max_retry_after: float = _DEFAULTS.max_retry_after

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
    retrying = retry(
        max_attempts=policy.attempts,
        exceptions=transient(policy.max_retry_after, deadline),
        wait_initial=policy.wait_initial,
        wait_max=policy.wait_max,
        wait_jitter=policy.wait_jitter,
        timeout=max(timeout, 0.001),
    )
    return retrying(fn)(*args, **kwargs)


RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool | float]


def retry(
    max_attempts: int = _DEFAULTS.retry_attempts,
    backoff_factor: float = 2.0,
    exceptions: RetryOn = (Exception,),
    *,
    wait_initial: float = _DEFAULTS.retry_wait_initial,
    wait_max: float = _DEFAULTS.retry_wait_max,
    wait_jitter: float = _DEFAULTS.retry_wait_jitter,
    timeout: float | None = _DEFAULTS.retry_timeout,
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Retry the decorated function (sync or async) on ``exceptions`` with exponential backoff.

    The decorator every retry of the agent goes through, model calls included, so each one
    is counted in ``stamina_retries_total`` and seen by the on-retry hooks (span event, log
    line). ``backoff_factor`` is the base of the exponential backoff; ``exceptions`` is an
    exception type, a tuple of them, or a predicate that may return the seconds to wait
    (see :func:`transient`). The other defaults are those of ``[resilience]``.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if backoff_factor < 1:
        raise ValueError(f"backoff_factor must be >= 1, got {backoff_factor}")
    import stamina  # on first use: `history` and `config show` load this package, never retry

    return stamina.retry(
        on=exceptions,
        attempts=max_attempts,
        timeout=None if timeout is None else dt.timedelta(seconds=timeout),
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_jitter=wait_jitter,
        wait_exp_base=backoff_factor,
    )
