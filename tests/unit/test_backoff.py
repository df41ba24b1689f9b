"""The failure streak and the pause it calls for: one count, one rule, read by every caller."""

from __future__ import annotations

import pytest

from hephaestus.resilience.backoff import FailureBackoff, FailureStreak


def test_failure_backoff_doubles_while_cycles_fail_up_to_the_maximum():
    backoff = FailureBackoff(base=1.0, maximum=5.0)

    assert [backoff.pause(failures) for failures in range(6)] == [0.0, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_base_of_zero_disables_the_backoff():
    backoff = FailureBackoff(base=0.0, maximum=30.0)

    assert [backoff.pause(failures) for failures in range(4)] == [0.0] * 4


def test_a_failed_cycle_extends_the_streak_and_a_success_ends_it_with_its_recovery_time():
    streak = FailureStreak()

    assert streak.record("failed", started_at=10.0, finished_at=11.0) is None
    assert streak.record("failed", started_at=20.0, finished_at=21.0) is None
    assert (streak.failures, streak.started_at) == (2, 10.0)
    assert streak.record("succeeded", started_at=30.0, finished_at=32.5) == 22.5
    assert (streak.failures, streak.started_at) == (0, None)
    assert streak.record("succeeded", started_at=40.0, finished_at=41.0) is None  # no streak


@pytest.mark.parametrize("outcome", ["rejected", "aborted"])
def test_a_rejected_or_aborted_cycle_neither_extends_nor_ends_a_streak(outcome):
    streak = FailureStreak()
    streak.record("failed", started_at=10.0, finished_at=11.0)

    assert streak.record(outcome, started_at=20.0, finished_at=21.0) is None
    assert (streak.failures, streak.started_at) == (1, 10.0)
    assert FailureBackoff(base=1.0, maximum=30.0).pause(streak.failures) == 1.0


def test_a_replayed_history_gives_the_streak_the_live_count_would_have():
    cycles = [
        ("failed", 1.0, 2.0),
        ("succeeded", 3.0, 4.0),
        ("failed", 5.0, 6.0),
        ("rejected", 7.0, 8.0),
        ("failed", 9.0, 10.0),
    ]
    live = FailureStreak()
    for cycle in cycles:
        live.record(*cycle)

    assert FailureStreak.replay(cycles) == live == FailureStreak(failures=2, started_at=5.0)
