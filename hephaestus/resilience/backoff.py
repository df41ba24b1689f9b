"""Back off between cycles while they keep failing, so a broken endpoint is not hammered.

This is what gives an open circuit breaker time to reach its half-open probe: failed
cycles are cheap (they fail fast), and without a pause a run would burn all its cycles
inside one open window.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FailureBackoff:
    """Exponential pause after consecutive failed cycles: base, 2*base, 4*base... up to maximum."""

    base: float = 1.0
    maximum: float = 30.0
    streak: int = 0

    def after(self, failed: bool) -> float:
        """Seconds to wait before the next cycle, given whether this one failed."""
        if not failed or self.base <= 0:
            self.streak = 0 if not failed else self.streak + 1
            return 0.0
        self.streak += 1
        return min(self.maximum, self.base * 2 ** (self.streak - 1))
