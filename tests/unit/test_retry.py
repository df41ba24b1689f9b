"""Retries: which failures are retried and how long to wait, and the public ``retry`` decorator.

Waits are zero or recorded instead of slept, so the tests run in no time.
"""

from __future__ import annotations

import asyncio
import inspect
import random

import pytest
import stamina
import stamina.instrumentation

from hephaestus.config import ResilienceConfig
from hephaestus.llm.base import (
    LLMError,
    LLMServerError,
    llm_error,
)
from hephaestus.resilience import (
    CircuitBreaker,
    Deadline,
    RetryPolicy,
    call_with_retries,
    retry,
)
from hephaestus.resilience.retry import transient
from hephaestus.resilience.timeouts import NO_DEADLINE


def test_the_retry_policy_comes_from_the_resilience_section():
    config = ResilienceConfig(
        retry_attempts=7,
        retry_timeout=12.0,
        retry_wait_initial=0.25,
        retry_wait_max=4.0,
        retry_wait_jitter=0.5,
        max_retry_after=9.0,
    )

    assert RetryPolicy.from_config(config) == RetryPolicy(
        attempts=7,
        timeout=12.0,
        wait_initial=0.25,
        wait_max=4.0,
        wait_jitter=0.5,
        max_retry_after=9.0,
    )


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("not an LLM error"),
        LLMError("HTTP 400", error_type="http_400"),
        LLMError("not a completion", error_type="invalid_response"),
        llm_error("HTTP 401", error_type="http_401"),
    ],
)
def test_errors_not_marked_retryable_are_never_retried(exc):
    assert transient(60.0)(exc) is False


@pytest.mark.parametrize("error_type", ["timeout", "connection_error", "http_429", "http_503"])
def test_transient_errors_are_retried_with_the_normal_backoff(error_type):
    assert transient(60.0)(llm_error("x", error_type=error_type)) is True


def test_a_retry_after_is_honoured_as_the_exact_wait():
    decide = transient(60.0)

    assert decide(llm_error("429", error_type="http_429", retry_after=2.5)) == 2.5
    assert decide(llm_error("503", error_type="http_503", retry_after=0)) == 0.0


def test_a_retry_after_is_capped_by_max_retry_after():
    wait = transient(10.0)(llm_error("429", error_type="http_429", retry_after=3600))

    assert wait == 10.0 and isinstance(wait, float)


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(clock):
    deadline = Deadline.after(3.0, clock=clock)
    decide = transient(60.0, deadline)

    assert decide(llm_error("429", error_type="http_429", retry_after=5)) is False
    assert decide(llm_error("429", error_type="http_429", retry_after=2)) == 2.0


FAST = RetryPolicy(attempts=3, timeout=5.0, wait_initial=0.0, wait_max=0.0, wait_jitter=0.0)


def failing(errors: list[Exception], answer: str = "ok"):
    """A callable raising ``errors`` one per call, then returning ``answer``; counts calls."""
    calls: list[int] = []

    def call(*args: object) -> str:
        calls.append(len(args))
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return answer

    return call, calls


def test_call_with_retries_retries_transient_errors_until_one_attempt_succeeds():
    call, calls = failing(
        [llm_error("a", error_type="http_500"), llm_error("b", error_type="timeout")]
    )

    assert call_with_retries(call, FAST, 5.0, NO_DEADLINE, "arg") == "ok"
    assert calls == [1, 1, 1]


def test_call_with_retries_raises_the_last_error_when_attempts_run_out():
    errors = [
        llm_error("first", error_type="http_502"),
        llm_error("second", error_type="http_503"),
        llm_error("third", error_type="http_500"),
    ]
    call, calls = failing(errors)

    with pytest.raises(LLMServerError) as info:
        call_with_retries(call, FAST, 5.0, NO_DEADLINE)
    assert info.value is errors[-1] and len(calls) == 3


def test_call_with_retries_lets_a_permanent_error_through_at_once():
    bad = LLMError("HTTP 400", error_type="http_400")
    call, calls = failing([bad])

    with pytest.raises(LLMError) as info:
        call_with_retries(call, FAST, 5.0, NO_DEADLINE)
    assert info.value is bad and len(calls) == 1


def test_call_with_retries_reports_each_retry_under_the_called_function_s_name(retries_seen):
    call, _ = failing([llm_error("a", error_type="http_500")])

    call_with_retries(call, FAST, 5.0, NO_DEADLINE)

    assert [(d.name, d.retry_num) for d in retries_seen] == [
        (f"{__name__}.failing.<locals>.call", 1)
    ]
    assert isinstance(retries_seen[0].caused_by, LLMServerError)


def test_without_a_config_every_default_is_the_resilience_section_s():
    defaults = ResilienceConfig()

    assert RetryPolicy() == RetryPolicy.from_config(defaults)
    breaker = CircuitBreaker("b")
    assert (breaker.failure_threshold, breaker.reset_timeout) == (
        defaults.breaker_failure_threshold,
        defaults.breaker_reset_timeout,
    )
    decorator = inspect.signature(retry).parameters
    assert decorator["max_attempts"].default == defaults.retry_attempts
    assert decorator["wait_initial"].default == defaults.retry_wait_initial
    assert decorator["wait_max"].default == defaults.retry_wait_max
    assert decorator["timeout"].default == defaults.retry_timeout


# -- the public retry decorator ---------------------------------------------------------------
@pytest.fixture
def no_backoff():
    """Stamina's test mode: no waits, and the decorator's own attempt count still applies."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.fixture
def retries_seen():
    """Every stamina retry while the test runs, as ``RetryDetails``."""
    seen: list[stamina.instrumentation.RetryDetails] = []
    hooks = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([*hooks, seen.append])
    yield seen
    stamina.instrumentation.set_on_retry_hooks(hooks)


def flaky_function(failures: int, exc: type[Exception] = ValueError):
    calls: list[int] = []

    @retry(max_attempts=3, backoff_factor=2.0, exceptions=(ValueError,))
    def fetch(x: int) -> int:
        calls.append(x)
        if len(calls) <= failures:
            raise exc(f"failure {len(calls)}")
        return x * 2

    return fetch, calls


def flaky_coroutine(failures: int, exc: type[Exception] = ValueError):
    calls: list[int] = []

    @retry(max_attempts=3, backoff_factor=2.0, exceptions=(ValueError,))
    async def fetch(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0)
        if len(calls) <= failures:
            raise exc(f"failure {len(calls)}")
        return x * 2

    return fetch, calls


def run_sync(fetch, x):
    return fetch(x)


def run_async(fetch, x):
    return asyncio.run(fetch(x))


KINDS = [
    pytest.param(flaky_function, run_sync, id="sync"),
    pytest.param(flaky_coroutine, run_async, id="async"),
]


@pytest.mark.parametrize(("make", "run"), KINDS)
def test_retry_returns_the_value_once_an_attempt_succeeds(no_backoff, retries_seen, make, run):
    fetch, calls = make(failures=2)

    assert run(fetch, 21) == 42
    assert calls == [21, 21, 21]
    assert [d.retry_num for d in retries_seen] == [1, 2]
    assert all(isinstance(d.caused_by, ValueError) for d in retries_seen)


@pytest.mark.parametrize(("make", "run"), KINDS)
def test_retry_gives_up_after_max_attempts_with_the_last_error(no_backoff, make, run):
    fetch, calls = make(failures=10)

    with pytest.raises(ValueError, match="failure 3"):
        run(fetch, 1)
    assert len(calls) == 3


@pytest.mark.parametrize(("make", "run"), KINDS)
def test_retry_does_not_retry_exceptions_it_was_not_given(no_backoff, retries_seen, make, run):
    fetch, calls = make(failures=10, exc=KeyError)

    with pytest.raises(KeyError):
        run(fetch, 1)
    assert len(calls) == 1 and retries_seen == []


def test_retry_waits_grow_by_backoff_factor(monkeypatch, retries_seen):
    monkeypatch.setattr(random, "uniform", lambda _a, _b: 0.0)  # stamina's jitter, switched off
    calls = []

    @retry(
        max_attempts=4, backoff_factor=3.0, exceptions=ValueError, wait_initial=0.01, wait_max=1.0
    )
    def fetch() -> None:
        calls.append(1)
        raise ValueError("down")

    with pytest.raises(ValueError):
        fetch()
    assert len(calls) == 4
    assert [round(d.wait_for, 6) for d in retries_seen] == [0.01, 0.03, 0.09]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"max_attempts": -3}, "max_attempts must be >= 1"),
        ({"backoff_factor": 0.5}, "backoff_factor must be >= 1"),
    ],
)
def test_retry_rejects_arguments_that_cannot_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        retry(**kwargs)
