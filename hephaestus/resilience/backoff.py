"""The failure streak, and the pause between cycles it calls for.

:class:`FailureStreak` is the one count of consecutive failed cycles: the
``hephaestus_consecutive_failures`` gauge, ``/api/health``, the pause between cycles and
the streak resumed from memory after a restart all read it, so they never disagree.

The pause is what gives an open circuit breaker time to reach its half-open probe: failed
cycles are cheap (they fail fast), and without a pause a run would burn all its cycles
inside one open window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class FailureStreak:
    """Failed cycles since the last succeeded one, and when the first of them started.

    One rule: a failed cycle extends the streak, a succeeded one ends it, and a rejected
    or aborted cycle does neither (deciding not to change anything is not a failure, and
    not a recovery either).
    """

    failures: int = 0
    started_at: float | None = None

    def record(self, outcome: str, started_at: float, finished_at: float) -> float | None:
        """Count a finished cycle; when a success ends a streak, the seconds it lasted.

        Those seconds run from the start of the streak's first failed cycle to the end of
        the success (the time to recovery).
        """
        if outcome == "failed":
            if self.failures == 0:
                self.started_at = started_at
            self.failures += 1
        elif outcome == "succeeded":
            recovered = None
            if self.failures and self.started_at is not None:
                recovered = max(0.0, finished_at - self.started_at)
            self.failures, self.started_at = 0, None
            return recovered
        return None

    @classmethod
    def replay(cls, cycles: Iterable[tuple[str, float, float]]) -> FailureStreak:
        """The streak after ``(outcome, started_at, finished_at)`` cycles, oldest first."""
        streak = cls()
        for outcome, started_at, finished_at in cycles:
            streak.record(outcome, started_at, finished_at)
        return streak


@dataclass(frozen=True)
class FailureBackoff:
    """Exponential pause while a failure streak lasts: base, 2*base, 4*base... up to maximum."""

    base: float = 1.0
    maximum: float = 30.0

    def pause(self, failures: int) -> float:
        """Seconds to wait before the next cycle, given the failures of the current streak."""
        if failures <= 0 or self.base <= 0:
            return 0.0
        return min(self.maximum, self.base * 2 ** (failures - 1))
