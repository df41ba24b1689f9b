"""The pause between failing cycles: doubling up to a maximum, gone after a success."""

from __future__ import annotations

from hephaestus.resilience.backoff import FailureBackoff


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
