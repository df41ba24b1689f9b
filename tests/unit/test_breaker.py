"""The circuit breaker as a state machine: closed, open, half-open, and every move between.

Time is a fake clock, so the tests say exactly when a breaker opens or a probe goes out.
"""

from __future__ import annotations

import itertools
import random
import sys
import threading
import time

import pytest
from factories import FakeClock

from hephaestus.config import ROLES
from hephaestus.llm.base import (
    Message,
    Role,
)
from hephaestus.llm.client import RoleModels
from hephaestus.resilience import (
    BreakerState,
    CircuitBreaker,
    RetryPolicy,
    Transition,
)
from hephaestus.resilience.breaker import TRANSITIONS

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
VALID_MOVES = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)}


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


def test_the_declared_moves_are_exactly_those_of_the_state_machine():
    assert set(TRANSITIONS) == VALID_MOVES and len(TRANSITIONS) == len(VALID_MOVES)


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
    models = RoleModels(
        DyingProvider(),
        {role: ["m"] for role in ROLES},
        policy=RetryPolicy(attempts=1),
        breaker_threshold=1,
    )

    with pytest.raises(RuntimeError):
        models.complete(Role.BRAIN, [Message("user", "{}")])

    assert models.breakers["m"].state is OPEN  # not left closed, nor half-open for good
