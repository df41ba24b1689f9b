"""Signals of the resilience layer: retries and circuit-breaker transitions.

Each becomes a metric, a span event on the current span (the ``chat`` span for retries)
and a structured log line carrying the cycle's correlation id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import stamina.instrumentation
from prometheus_client import REGISTRY
from stamina.instrumentation import RetryDetails

from hephaestus.resilience.breaker import TRANSITIONS, BreakerState
from hephaestus.telemetry.catalog import Metrics
from hephaestus.telemetry.spans import add_event, error_type

BREAKER_STATES = tuple(state.value for state in BreakerState)
_LOG = logging.getLogger("hephaestus.resilience")


def declare_breaker(metrics: Metrics, name: str) -> None:
    """Show a new breaker as closed (one-hot) with zero transitions of each kind."""
    for state in BREAKER_STATES:
        metrics.breaker_state.labels(breaker=name, state=state).set(
            1 if state == BreakerState.CLOSED else 0
        )
    for from_state, to_state in TRANSITIONS:
        metrics.breaker_transitions.labels(breaker=name, from_state=from_state, to_state=to_state)


def breaker_transition(
    metrics: Metrics, name: str, from_state: str, to_state: str, failures: int
) -> None:
    """Record a transition: one-hot gauge, counter, span event and a log line."""
    for state in BREAKER_STATES:
        metrics.breaker_state.labels(breaker=name, state=state).set(1 if state == to_state else 0)
    metrics.breaker_transitions.labels(breaker=name, from_state=from_state, to_state=to_state).inc()
    attributes = {
        "hephaestus.breaker": name,
        "hephaestus.breaker.from_state": from_state,
        "hephaestus.breaker.to_state": to_state,
        "hephaestus.breaker.failures": failures,
    }
    add_event("circuit_breaker.transition", attributes)
    level = logging.WARNING if to_state == BreakerState.OPEN else logging.INFO
    _LOG.log(
        level,
        "circuit breaker transition",
        extra={
            "breaker": name,
            "from_state": from_state,
            "to_state": to_state,
            "failures": failures,
        },
    )


def on_retry(details: RetryDetails) -> None:
    """Stamina hook: a span event on the current (``chat``) span and a log line."""
    kind = error_type(details.caused_by)
    add_event(
        "retry",
        {
            "retry.attempt": details.retry_num,
            "retry.wait_seconds": details.wait_for,
            "error.type": kind,
            "retry.callable": details.name,
        },
    )
    _LOG.warning(
        "retry scheduled",
        extra={
            "retry_num": details.retry_num,
            "wait_s": round(details.wait_for, 3),
            "waited_s": round(details.waited_so_far, 3),
            "error.type": kind,
            "callable": details.name,
        },
    )


def install_retry_hooks(metrics: Metrics) -> None:
    """Stamina's own Prometheus hook (``stamina_retries_total``) plus :func:`on_retry`.

    Stamina's hooks are its own process-wide setting; a registry other than the default
    one gets its own count of retries as well.
    """
    hooks: list[stamina.instrumentation.RetryHook | stamina.instrumentation.RetryHookFactory] = [
        stamina.instrumentation.PrometheusOnRetryHook,
        on_retry,
    ]
    if metrics.registry is not REGISTRY:
        hooks.append(_RetryCounter(metrics))
    stamina.instrumentation.set_on_retry_hooks(hooks)


class _RetryCounter:
    """Counts retries into another registry's ``stamina_retries_total``, as stamina does."""

    def __init__(self, metrics: Metrics) -> None:
        self.retries = metrics.retries

    def __call__(self, details: RetryDetails) -> None:
        self.retries.labels(
            callable=details.name,
            retry_num=str(details.retry_num),
            error_type=qualified_name(type(details.caused_by)),
        ).inc()


def qualified_name(obj: object) -> str:
    """How stamina names a retried callable or an exception type in its labels."""
    name = getattr(obj, "__qualname__", None) or "<unnamed object>"
    module = getattr(obj, "__module__", None) or "<unknown module>"
    return name if module == "builtins" else f"{module}.{name}"


def declare_retries(metrics: Metrics, callable_name: str, error_types: Iterable[str]) -> None:
    """Create ``callable_name``'s first-retry series at zero, so dashboards show "no retries".

    Names are spelled the way stamina labels them: ``module.qualname`` of the retried
    callable and of each exception type it is retried on.
    """
    for kind in error_types:
        metrics.retries.labels(callable=callable_name, retry_num="1", error_type=kind)
