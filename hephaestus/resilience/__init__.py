"""Resilience: stamina retries, circuit breakers and deadlines."""

from hephaestus.resilience.breaker import BreakerState, CircuitBreaker, Transition
from hephaestus.resilience.retry import RetryPolicy, call_with_retries, retry
from hephaestus.resilience.timeouts import Deadline, current_deadline, deadline_scope

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "Deadline",
    "RetryPolicy",
    "Transition",
    "call_with_retries",
    "current_deadline",
    "deadline_scope",
    "retry",
]
