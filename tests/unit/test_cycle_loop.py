"""The one cycle loop behind ``run --cycles`` and ``serve``: count, pause, stop.

The runner here is a scripted stand-in (the loop's own logic is what is under test; real
cycles run through this loop in the CLI and service tests).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from factories import make_config

from hephaestus.agent.models import CycleAborted, CycleResult, Reason
from hephaestus.config import Config
from hephaestus.resilience.backoff import FailureStreak
from hephaestus.service.cycles import CycleRequest, run_cycles

BACKOFF = {"failure_backoff": 1.0, "failure_backoff_max": 3.0}


@dataclass
class ScriptedRunner:
    """Ends each cycle with the next scripted reason (or raises it) and keeps the streak."""

    script: list[Reason | BaseException]
    config: Config = field(default_factory=lambda: make_config(resilience=BACKOFF))
    streak: FailureStreak = field(default_factory=FailureStreak)
    requests: list[CycleRequest] = field(default_factory=list)

    def run_cycle(self, objective: str | None, correlation_id: str | None) -> CycleResult:
        self.requests.append(CycleRequest(objective, correlation_id))
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        result = CycleResult(correlation_id=correlation_id or "c", started_at=1.0)
        result.end(step)
        result.finished_at = 2.0
        self.streak.record(result.outcome.value, result.started_at, result.finished_at)
        return result


def loop(runner: ScriptedRunner, stop: threading.Event | None = None, **kwargs):
    reported: list[Reason] = []
    waits: list[float] = []
    run_cycles(
        runner,  # type: ignore[arg-type]
        stop or threading.Event(),
        next_request=kwargs.pop("next_request", lambda n: CycleRequest(f"objective {n}")),
        on_cycle=kwargs.pop("on_cycle", lambda result: reported.append(result.reason)),
        wait=waits.append,
        **kwargs,
    )
    return reported, waits


def test_it_runs_the_count_asked_for_and_does_not_pause_after_the_last():
    runner = ScriptedRunner([Reason.COMMITTED] * 3)

    reported, waits = loop(runner, cycles=3, interval=0.5)

    assert reported == [Reason.COMMITTED] * 3
    assert [r.objective for r in runner.requests] == ["objective 0", "objective 1", "objective 2"]
    assert waits == [0.5, 0.5]


def test_the_pause_doubles_while_the_streak_lasts_and_the_interval_is_its_floor():
    script = [
        Reason.TESTS_FAILED,
        Reason.LLM_ERROR,
        Reason.REVIEW_REJECTED,  # neither extends nor ends the streak
        Reason.TIMEOUT,
        Reason.TIMEOUT,
        Reason.COMMITTED,
        Reason.COMMITTED,
    ]

    _, waits = loop(ScriptedRunner(script), cycles=len(script), interval=0.5)

    assert waits == [1.0, 2.0, 2.0, 3.0, 3.0, 0.5]


def test_a_stop_requested_during_a_cycle_ends_the_loop_before_the_next():
    stop = threading.Event()
    runner = ScriptedRunner([Reason.COMMITTED] * 5)
    reported: list[Reason] = []

    def on_cycle(result: CycleResult) -> None:
        reported.append(result.reason)
        if len(reported) == 2:
            stop.set()

    loop(runner, stop, on_cycle=on_cycle)  # no count: until stopped

    assert reported == [Reason.COMMITTED] * 2
    assert len(runner.requests) == 2


def test_a_cycle_aborted_by_shutdown_ends_the_loop_unreported():
    runner = ScriptedRunner([Reason.COMMITTED, CycleAborted("grace period over"), Reason.COMMITTED])

    reported, waits = loop(runner, cycles=3)

    assert reported == [Reason.COMMITTED]
    assert len(runner.requests) == 2
    assert waits == [0.0]


def test_an_error_that_is_not_an_abort_is_not_swallowed():
    runner = ScriptedRunner([RuntimeError("bug")])

    with pytest.raises(RuntimeError):
        loop(runner, cycles=1)
