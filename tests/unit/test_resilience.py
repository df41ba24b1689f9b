"""The resilience building blocks on their own: breaker, deadlines, backoff, retries, chaos.

Time is a fake clock (or a fake ``sleep``) wherever the behaviour depends on it, so the tests
say exactly when a breaker opens or a probe goes out, and they run in no time.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import threading
import time

import pytest
import stamina
import stamina.instrumentation

from hephaestus.agent.answers import REVIEW
from hephaestus.config import ChaosConfig, ResilienceConfig
from hephaestus.llm.base import (
    Completion,
    LLMError,
    LLMRateLimited,
    LLMServerError,
    LLMTimeout,
    Message,
    Role,
    llm_error,
)
from hephaestus.llm.chaos import ChaosProvider
from hephaestus.resilience import (
    BreakerState,
    CircuitBreaker,
    Deadline,
    RetryPolicy,
    Transition,
    call_with_retries,
    current_deadline,
    deadline_scope,
    retry,
)
from hephaestus.resilience.backoff import FailureBackoff
from hephaestus.resilience.retry import transient
from hephaestus.resilience.timeouts import NO_DEADLINE

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
VALID_MOVES = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)}


class FakeClock:
    """A monotonic clock that moves only when told to (thread-safe)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_breaker(
    clock: FakeClock,
    threshold: int = 3,
    reset: float = 30.0,
) -> tuple[CircuitBreaker, list[Transition]]:
    seen: list[Transition] = []
    breaker = CircuitBreaker(
        "openai/model-a",
        failure_threshold=threshold,
        reset_timeout=reset,
        clock=clock,
        listeners=[seen.append],
    )
    return breaker, seen


def moves(transitions: list[Transition]) -> list[tuple[str, str]]:
    return [(t.from_state.value, t.to_state.value) for t in transitions]


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is OPEN


# -- circuit breaker --------------------------------------------------------------------------
def test_a_new_breaker_is_closed_and_lets_calls_through(clock):
    breaker, seen = make_breaker(clock)

    assert breaker.state is CLOSED
    assert breaker.would_allow() and breaker.allow() and breaker.allow()
    assert seen == []


def test_it_opens_after_the_threshold_of_consecutive_failures(clock):
    breaker, seen = make_breaker(clock, threshold=3)

    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is CLOSED and breaker.allow()
    breaker.record_failure()

    assert breaker.state is OPEN
    assert seen == [Transition("openai/model-a", CLOSED, OPEN, failures=3)]


def test_a_success_resets_the_count_of_consecutive_failures(clock):
    breaker, seen = make_breaker(clock, threshold=3)

    for outcome in ("fail", "fail", "ok", "fail", "fail"):
        breaker.record_failure() if outcome == "fail" else breaker.record_success()
    assert breaker.state is CLOSED and seen == []
    breaker.record_failure()
    assert breaker.state is OPEN


def test_an_open_breaker_rejects_calls_until_the_reset_timeout(clock):
    breaker, seen = make_breaker(clock, reset=30.0)
    open_breaker(breaker)

    assert not breaker.allow()
    clock.advance(29.9)
    assert not breaker.allow() and not breaker.would_allow()
    assert breaker.state is OPEN
    assert moves(seen) == [("closed", "open")]


def test_would_allow_answers_without_changing_state(clock):
    breaker, seen = make_breaker(clock, reset=30.0)
    open_breaker(breaker)
    clock.advance(30.0)

    assert breaker.would_allow() and breaker.would_allow()
    assert breaker.state is OPEN  # asking is not probing
    assert moves(seen) == [("closed", "open")]
    assert breaker.allow()
    assert breaker.state is HALF_OPEN
    assert not breaker.would_allow()  # the probe is out: nobody else may go


def test_after_the_reset_timeout_exactly_one_probe_goes_out(clock):
    breaker, seen = make_breaker(clock, reset=30.0)
    open_breaker(breaker)
    clock.advance(31.0)

    assert breaker.allow()
    assert breaker.state is HALF_OPEN
    assert not breaker.allow()  # a second caller while the probe is in flight
    clock.advance(29.0)
    assert not breaker.allow()  # still inside the probe's window
    assert moves(seen) == [("closed", "open"), ("open", "half_open")]


def test_a_probe_that_never_reports_back_is_replaced_after_another_reset_timeout(clock):
    breaker, seen = make_breaker(clock, reset=30.0)
    open_breaker(breaker)
    clock.advance(30.0)
    assert breaker.allow()  # the probe goes out, and its caller dies without reporting

    clock.advance(30.0)
    assert breaker.would_allow()
    assert breaker.allow()  # a replacement probe: the breaker cannot stay half-open for good
    assert not breaker.allow()
    breaker.record_success()
    assert breaker.state is CLOSED
    assert moves(seen) == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_successful_probe_closes_the_breaker_and_starts_counting_afresh(clock):
    breaker, seen = make_breaker(clock, threshold=2, reset=30.0)
    open_breaker(breaker)
    clock.advance(30.0)
    assert breaker.allow()
    breaker.record_success()

    assert breaker.state is CLOSED
    assert breaker.allow() and breaker.allow()
    breaker.record_failure()
    assert breaker.state is CLOSED  # one failure after the probe is below the threshold
    assert moves(seen) == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failed_probe_reopens_the_breaker_and_restarts_the_timer(clock):
    breaker, seen = make_breaker(clock, reset=30.0)
    open_breaker(breaker)
    clock.advance(30.0)
    assert breaker.allow()
    clock.advance(5.0)  # the probe took a while to fail
    breaker.record_failure()

    assert breaker.state is OPEN
    clock.advance(29.0)
    assert not breaker.allow()  # 30 s counts from the failed probe, not the first opening
    clock.advance(1.0)
    assert breaker.allow()
    assert moves(seen) == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
    ]


def test_every_listener_gets_every_transition_in_order(clock):
    first: list[Transition] = []
    second: list[Transition] = []
    breaker = CircuitBreaker(
        "b",
        failure_threshold=1,
        reset_timeout=1.0,
        clock=clock,
        listeners=[first.append, second.append],
    )
    breaker.record_failure()
    clock.advance(1.0)
    breaker.allow()
    breaker.record_failure()
    clock.advance(1.0)
    breaker.allow()
    breaker.record_success()

    assert first == second
    assert moves(first) == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert [t.failures for t in first] == [1, 1, 2, 2, 0]  # consecutive failures so far
    assert {t.breaker for t in first} == {"b"}


def test_a_late_success_while_open_does_not_close_the_breaker(clock):
    breaker, seen = make_breaker(clock, threshold=1)
    assert breaker.allow()  # call A goes out while the breaker is closed
    breaker.record_failure()  # call B fails: the breaker opens
    breaker.record_success()  # call A comes back fine, late

    assert breaker.state is OPEN
    assert not breaker.allow()  # only a probe after the reset timeout may close it
    assert moves(seen) == [("closed", "open")]


def test_a_listener_may_look_at_the_breaker_it_is_told_about(clock):
    looked: list[tuple[BreakerState, bool]] = []
    breaker = CircuitBreaker("b", failure_threshold=1, reset_timeout=1.0, clock=clock)
    breaker._listeners.append(lambda t: looked.append((breaker.state, breaker.would_allow())))
    breaker.record_failure()
    clock.advance(1.0)
    breaker.allow()

    assert looked == [(OPEN, False), (HALF_OPEN, False)]


def test_state_names_are_the_metric_label_values():
    assert [s.value for s in BreakerState] == ["closed", "open", "half_open"]


def test_concurrent_callers_leave_a_consistent_breaker_and_a_valid_history():
    clock = FakeClock()
    seen: list[Transition] = []

    def listener(transition: Transition) -> None:
        time.sleep(0)  # like the real listeners, which write a log line and a span event
        seen.append(transition)

    breaker = CircuitBreaker(
        "shared", failure_threshold=3, reset_timeout=0.05, clock=clock, listeners=[listener]
    )
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            for _ in range(3000):
                clock.advance(0.001)
                breaker.would_allow()
                if breaker.allow():
                    if rng.random() < 0.6:
                        breaker.record_failure()
                    else:
                        breaker.record_success()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)

    assert errors == []
    assert len(seen) > 10, "the workload should move the breaker many times"
    assert seen[0].from_state is CLOSED
    for before, after in itertools.pairwise(seen):
        assert before.to_state is after.from_state, moves(seen)
    assert {(t.from_state, t.to_state) for t in seen} <= VALID_MOVES
    assert seen[-1].to_state is breaker.state  # what listeners (the gauge) saw is the truth


# -- deadlines --------------------------------------------------------------------------------
def test_a_deadline_counts_down_and_never_goes_negative(clock):
    deadline = Deadline.after(10.0, "cycle deadline", clock=clock)

    assert deadline.remaining() == 10.0 and not deadline.expired
    clock.advance(4.0)
    assert deadline.remaining() == 6.0
    clock.advance(100.0)
    assert deadline.remaining() == 0.0 and deadline.expired
    assert deadline.what == "cycle deadline"


def test_within_picks_the_earlier_of_the_two_deadlines(clock):
    cycle = Deadline.after(10.0, "cycle deadline", clock=clock)

    stage = cycle.within(3.0, "plan stage timeout")
    assert (stage.remaining(), stage.what) == (3.0, "plan stage timeout")
    assert cycle.within(30.0, "plan stage timeout") is cycle


def test_cap_bounds_a_timeout_by_the_time_left(clock):
    deadline = Deadline.after(5.0, clock=clock)

    assert deadline.cap(2.0) == 2.0
    assert deadline.cap(60.0) == 5.0
    clock.advance(10.0)
    assert deadline.cap(60.0) == 0.0


def test_outside_any_scope_there_is_no_deadline():
    assert current_deadline() is NO_DEADLINE
    assert current_deadline().remaining() == float("inf") and not NO_DEADLINE.expired


def test_deadline_scopes_nest_and_restore_the_outer_deadline(clock):
    outer = Deadline.after(100.0, "cycle", clock=clock)
    inner = Deadline.after(5.0, "stage", clock=clock)

    with deadline_scope(outer) as entered:
        assert entered is outer and current_deadline() is outer
        with deadline_scope(inner):
            assert current_deadline() is inner
        assert current_deadline() is outer
        with pytest.raises(RuntimeError), deadline_scope(inner):
            raise RuntimeError("a stage failed")
        assert current_deadline() is outer  # reset on the way out of an error too
    assert current_deadline() is NO_DEADLINE


def test_a_deadline_scope_does_not_leak_into_other_threads(clock):
    seen = []
    with deadline_scope(Deadline.after(1.0, clock=clock)):
        thread = threading.Thread(target=lambda: seen.append(current_deadline()))
        thread.start()
        thread.join()
    assert seen == [NO_DEADLINE]


# -- failure backoff between cycles -----------------------------------------------------------
def test_failure_backoff_doubles_while_cycles_fail_up_to_the_maximum():
    backoff = FailureBackoff(base=1.0, maximum=5.0)

    assert [backoff.after(True) for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_success_ends_the_backoff_and_the_next_failure_starts_from_base():
    backoff = FailureBackoff(base=0.5, maximum=30.0)
    backoff.after(True)
    backoff.after(True)

    assert backoff.after(False) == 0.0
    assert backoff.streak == 0
    assert backoff.after(True) == 0.5


def test_a_base_of_zero_disables_the_backoff():
    backoff = FailureBackoff(base=0.0, maximum=30.0)

    assert [backoff.after(True) for _ in range(4)] == [0.0] * 4
    assert backoff.after(False) == 0.0


# -- retry policy and the transient() hook -----------------------------------------------------
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


# -- fault injection --------------------------------------------------------------------------
class EchoProvider:
    """A provider that always answers; remembers the timeouts and schemas it was given."""

    name = "echo"
    server_address = "echo.invalid"
    server_port = 4242

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []
        self.schemas: list[object] = []
        self.closed = False

    def chat(
        self, role: Role, model: str, messages, timeout: float | None = None, schema=None
    ) -> Completion:
        self.timeouts.append(timeout)
        self.schemas.append(schema)
        return Completion(
            text=f"{role}:{model}",
            provider=self.name,
            request_model=model,
            response_model=model,
            input_tokens=3,
            output_tokens=2,
        )

    def close(self) -> None:
        self.closed = True


MESSAGES = [Message("user", "hello")]


def chaos(config: ChaosConfig) -> tuple[ChaosProvider, EchoProvider, list[float]]:
    inner, sleeps = EchoProvider(), []
    return ChaosProvider(inner, config, sleep=sleeps.append), inner, sleeps


def faults(config: ChaosConfig, calls: int = 60) -> list[str]:
    provider, _, _ = chaos(config)
    outcomes = []
    for _ in range(calls):
        try:
            provider.chat(Role.BRAIN, "m", MESSAGES, timeout=1.0)
            outcomes.append("ok")
        except LLMError as exc:
            outcomes.append(exc.error_type)
    return outcomes


def test_the_same_seed_injects_the_same_faults():
    config = ChaosConfig(seed=42, llm_error_rate=0.5)

    sequence = faults(config)
    assert sequence == faults(config)
    assert {"ok", "timeout", "http_500"} <= set(sequence)
    assert faults(ChaosConfig(seed=43, llm_error_rate=0.5)) != sequence


def test_an_error_rate_of_zero_never_fails():
    assert set(faults(ChaosConfig(seed=1, llm_error_rate=0.0, llm_latency=0.001))) == {"ok"}


@pytest.mark.parametrize(
    ("share", "kind", "error_type"),
    [
        (1.0, LLMTimeout, "timeout"),
        (0.0, LLMServerError, "http_500"),
    ],
)
def test_an_error_rate_of_one_always_fails_as_a_retryable_error(share, kind, error_type):
    provider, inner, _ = chaos(ChaosConfig(seed=5, llm_error_rate=1.0, llm_timeout_share=share))

    for _ in range(20):
        with pytest.raises(LLMError) as info:
            provider.chat(Role.ARCHITECT, "model-a", MESSAGES)
        assert type(info.value) is kind  # a subclass, so stamina's error_type label says what
        assert info.value.error_type == error_type and info.value.retryable
        assert transient(60.0)(info.value) is True
    assert inner.timeouts == []  # the real provider was never asked


def test_added_latency_sleeps_before_every_call_and_then_answers():
    provider, inner, sleeps = chaos(ChaosConfig(llm_latency=0.25))

    answers = [provider.chat(Role.MAESTRO, "m", MESSAGES, timeout=7.0) for _ in range(3)]
    assert sleeps == [0.25] * 3
    assert [a.text for a in answers] == ["maestro:m"] * 3
    assert inner.timeouts == [7.0] * 3


@pytest.mark.parametrize(("timeout", "slept"), [(2.0, 2.0), (None, 30.0)])
def test_a_hang_waits_out_the_request_timeout_then_times_out(timeout, slept):
    provider, inner, sleeps = chaos(ChaosConfig(llm_hang_rate=1.0))

    with pytest.raises(LLMTimeout, match="injected hang") as info:
        provider.chat(Role.BRAIN, "m", MESSAGES, timeout=timeout)
    assert sleeps == [slept]
    assert info.value.retryable and inner.timeouts == []


def test_without_a_fault_the_call_passes_through_to_the_real_provider():
    provider, inner, sleeps = chaos(ChaosConfig(seed=9, llm_error_rate=0.0001))

    answer = provider.chat(Role.CODE_REVIEWER, "model-b", MESSAGES, timeout=3.0, schema=REVIEW)
    assert answer == inner.chat(Role.CODE_REVIEWER, "model-b", MESSAGES)
    assert inner.schemas[0] is REVIEW  # the answer's schema reaches the real provider
    assert sleeps == []
    assert (provider.name, provider.server_address, provider.server_port) == (
        "echo",
        "echo.invalid",
        4242,
    )
    provider.close()
    assert inner.closed


def test_chaos_is_off_unless_a_fault_is_configured():
    assert not ChaosConfig().active
    assert not ChaosConfig(seed=3, llm_timeout_share=1.0).active
    assert ChaosConfig(llm_error_rate=0.1).active
    assert ChaosConfig(llm_latency=0.5).active
    assert ChaosConfig(llm_hang_rate=0.1).active


def test_a_rate_limit_is_a_retryable_error_with_its_retry_after():
    exc = llm_error("429", error_type="http_429", retry_after=4.0)
    assert isinstance(exc, LLMRateLimited) and exc.retry_after == 4.0


class DyingProvider:
    """A provider whose call dies without an answer (an abort, or a bug)."""

    name = "dying"
    server_address = None
    server_port = None

    def chat(self, role, model, messages, timeout=None, schema=None):
        raise RuntimeError("the call died")

    def close(self):
        pass


def test_a_call_that_dies_without_an_answer_counts_against_the_breaker():
    from hephaestus.llm.base import Message, Role
    from hephaestus.llm.client import RoleModels

    roles = ("brain", "architect", "code_reviewer", "maestro")
    models = RoleModels(
        DyingProvider(),
        {role: ["m"] for role in roles},
        policy=RetryPolicy(attempts=1),
        breaker_threshold=1,
    )

    with pytest.raises(RuntimeError):
        models.complete(Role.BRAIN, [Message("user", "{}")])

    assert models.breakers["m"].state is OPEN  # not left closed, nor half-open for good
