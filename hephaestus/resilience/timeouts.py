"""Deadlines: the whole cycle has one, each stage a shorter one, and blocking calls use the rest.

The current deadline lives in a contextvar so a model call deep inside a stage can bound its
HTTP timeout and its retries by what is left, without threading a parameter through.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time; ``what`` names it in error messages."""

    at: float
    what: str = "deadline"
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(
        cls, seconds: float, what: str = "deadline", clock: Callable[[], float] = time.monotonic
    ) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(clock() + seconds, what, clock)

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        """Whether no time is left."""
        return self.remaining() <= 0

    def within(self, seconds: float, what: str) -> Deadline:
        """The earlier of this deadline and ``seconds`` from now."""
        candidate = Deadline.after(seconds, what, self.clock)
        return candidate if candidate.at < self.at else self

    def cap(self, seconds: float) -> float:
        """``seconds`` or the time left, whichever is smaller."""
        return min(seconds, self.remaining())


NO_DEADLINE = Deadline(math.inf, "none")
_CURRENT: contextvars.ContextVar[Deadline] = contextvars.ContextVar(
    "hephaestus_deadline", default=NO_DEADLINE
)


def current_deadline() -> Deadline:
    """The deadline of the stage running in this context (``NO_DEADLINE`` outside a cycle)."""
    return _CURRENT.get()


@contextlib.contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[Deadline]:
    """Make ``deadline`` current inside the block."""
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)
