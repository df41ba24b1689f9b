"""The one cycle loop, for ``run --cycles`` and ``serve`` alike.

Run a cycle, report it, pause (the interval, or longer while a failure streak lasts, so a
broken endpoint is not hammered), and go on until the count is reached or a stop is
requested. A cycle aborted by the shutdown handler ends the loop; the runner has
recorded it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from hephaestus.agent.models import CycleAborted, CycleResult
from hephaestus.agent.orchestrator import CycleRunner
from hephaestus.resilience.backoff import FailureBackoff


@dataclass(frozen=True)
class CycleRequest:
    """What the next cycle should do: an operator's objective and correlation id, if any."""

    objective: str | None = None
    correlation_id: str | None = None


def run_cycles(
    runner: CycleRunner,
    stop: threading.Event,
    *,
    next_request: Callable[[int], CycleRequest],
    on_cycle: Callable[[CycleResult], None],
    wait: Callable[[float], None],
    cycles: int | None = None,
    interval: float = 0.0,
) -> None:
    """Run cycles until ``cycles`` have run (``None``: forever) or ``stop`` is set.

    ``next_request(n)`` says what cycle ``n`` (from 0) should do; ``wait(seconds)`` pauses
    between cycles (and returns early on a stop or new work).
    """
    resilience = runner.config.resilience
    backoff = FailureBackoff(resilience.failure_backoff, resilience.failure_backoff_max)
    ran = 0
    try:
        while not stop.is_set() and (cycles is None or ran < cycles):
            request = next_request(ran)
            result = runner.run_cycle(request.objective, request.correlation_id)
            ran += 1
            on_cycle(result)
            if cycles is not None and ran >= cycles:
                break
            wait(max(interval, backoff.pause(runner.streak.failures)))
    except CycleAborted:
        pass  # recorded as aborted by the runner; stop here
