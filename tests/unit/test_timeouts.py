"""Deadlines: a cycle's and a stage's time budget, and the scopes that carry them.

Time is a fake clock, so the tests say exactly how much time is left.
"""

from __future__ import annotations

import threading

import pytest

from hephaestus.resilience import (
    Deadline,
    current_deadline,
    deadline_scope,
)
from hephaestus.resilience.timeouts import NO_DEADLINE


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
