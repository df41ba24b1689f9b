"""Signals of the resilience layer: retries and circuit-breaker transitions.

Each becomes a metric, a span event on the current span (the ``chat`` span for retries)
and a structured log line carrying the cycle's correlation id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import stamina.instrumentation
from stamina.instrumentation import RetryDetails

from hephaestus.resilience.breaker import TRANSITIONS, BreakerState
from hephaestus.telemetry import catalog
from hephaestus.telemetry.instrument import add_event

BREAKER_STATES = tuple(state.value for state in BreakerState)
_LOG = logging.getLogger("hephaestus.resilience")


def declare_breaker(name: str) -> None:
    """Show a new breaker as closed (one-hot) with zero transitions of each kind."""
    for state in BREAKER_STATES:
        catalog.BREAKER_STATE.labels(breaker=name, state=state).set(1 if state == "closed" else 0)
    for from_state, to_state in TRANSITIONS:
        catalog.BREAKER_TRANSITIONS.labels(breaker=name, from_state=from_state, to_state=to_state)


def breaker_transition(name: str, from_state: str, to_state: str, failures: int) -> None:
    """Record a transition: one-hot gauge, counter, span event and a log line."""
    for state in BREAKER_STATES:
        catalog.BREAKER_STATE.labels(breaker=name, state=state).set(1 if state == to_state else 0)
    catalog.BREAKER_TRANSITIONS.labels(breaker=name, from_state=from_state, to_state=to_state).inc()
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
    cause = details.caused_by
    error_type = getattr(cause, "error_type", None) or type(cause).__name__
    add_event(
        "retry",
        {
            "retry.attempt": details.retry_num,
            "retry.wait_seconds": details.wait_for,
            "error.type": error_type,
            "retry.callable": details.name,
        },
    )
    _LOG.warning(
        "retry scheduled",
        extra={
            "retry_num": details.retry_num,
            "wait_s": round(details.wait_for, 3),
            "waited_s": round(details.waited_so_far, 3),
            "error.type": error_type,
            "callable": details.name,
        },
    )


def install_retry_hooks() -> None:
    """Stamina's own Prometheus hook (``stamina_retries_total``) plus :func:`on_retry`."""
    stamina.instrumentation.set_on_retry_hooks(
        [stamina.instrumentation.PrometheusOnRetryHook, on_retry]
    )


def declare_retries(callable_name: str, error_types: Iterable[str]) -> None:
    """Create ``callable_name``'s first-retry series at zero, so dashboards show "no retries".

    Names are spelled the way stamina labels them: ``module.qualname`` of the retried
    callable and of each exception type it is retried on.
    """
    counter = stamina.instrumentation.get_prometheus_counter()
    if counter is None:  # prometheus-client is not stamina's hook: nothing to declare
        return
    for error_type in error_types:
        counter.labels(callable=callable_name, retry_num="1", error_type=error_type)
