"""Circuit breakers, one per provider endpoint and model.

A small module of our own rather than pybreaker or purgatory: the agent needs to *ask*
whether a call may go out (so an open breaker sends the role to its next fallback model
without raising and without touching the network), a single half-open probe at a time,
exact state names for the one-hot gauge, and an injectable clock for tests. That is about
a hundred lines; a dependency would cost more adapting than it saves.

CLOSED → OPEN after ``failure_threshold`` consecutive failures; OPEN → HALF_OPEN once
``reset_timeout`` has passed (the next :meth:`allow` is the probe); HALF_OPEN → CLOSED on the
probe's success, back to OPEN on its failure. Every transition is reported to the listeners,
in order: they run under the breaker's (re-entrant) lock, so a gauge they set always ends
on the breaker's real state even when threads race.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hephaestus.config import ResilienceConfig

_DEFAULTS = ResilienceConfig()


class BreakerState(enum.StrEnum):
    """The three states of a breaker (also the ``state`` metric label)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Transition:
    """One state change of one breaker."""

    breaker: str
    from_state: BreakerState
    to_state: BreakerState
    failures: int


TRANSITIONS = (
    (BreakerState.CLOSED, BreakerState.OPEN),
    (BreakerState.OPEN, BreakerState.HALF_OPEN),
    (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    (BreakerState.HALF_OPEN, BreakerState.OPEN),
)
"""Every move the state machine can make (the ``from_state``/``to_state`` label pairs)."""

TransitionListener = Callable[[Transition], None]


class CircuitBreaker:
    """A thread-safe breaker; call :meth:`allow` before a call and report its result."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = _DEFAULTS.breaker_failure_threshold,
        reset_timeout: float = _DEFAULTS.breaker_reset_timeout,
        clock: Callable[[], float] = time.monotonic,
        listeners: Iterable[TransitionListener] = (),
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._listeners = list(listeners)
        self._lock = threading.RLock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._since = 0.0  # when the breaker opened, or when the current probe went out

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its timeout still reads ``open``)."""
        return self._state

    def would_allow(self) -> bool:
        """Whether :meth:`allow` would let a call out now, without changing any state."""
        with self._lock:
            return self._state is BreakerState.CLOSED or self._waited_out()

    def allow(self) -> bool:
        """Whether a call may go out now.

        Past the reset timeout an open breaker turns half-open and lets this one call out as
        its probe; a probe that never reported back (its caller died) is replaced after
        another reset timeout, so a breaker cannot stay half-open for good.
        """
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if not self._waited_out():
                return False
            self._since = self._clock()
            if self._state is BreakerState.OPEN:
                self._notify(self._move(BreakerState.HALF_OPEN))
        return True

    def _waited_out(self) -> bool:
        return self._clock() - self._since >= self.reset_timeout

    def record_success(self) -> None:
        """A call succeeded: reset the failure count; a successful probe closes the breaker.

        A late success of a call let out before the breaker opened does not close it: only
        a probe does (OPEN → CLOSED is not a transition of the state machine).
        """
        with self._lock:
            self._failures = 0
            transition = (
                self._move(BreakerState.CLOSED) if self._state is BreakerState.HALF_OPEN else None
            )
            self._notify(transition)

    def record_failure(self) -> None:
        """A call failed: count it; open at the threshold, or straight away from half-open."""
        with self._lock:
            self._failures += 1
            transition = None
            if self._state is BreakerState.HALF_OPEN or (
                self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
            ):
                transition = self._move(BreakerState.OPEN)
                self._since = self._clock()
            self._notify(transition)

    def _move(self, to_state: BreakerState) -> Transition:
        transition = Transition(self.name, self._state, to_state, self._failures)
        self._state = to_state
        return transition

    def _notify(self, transition: Transition | None) -> None:
        if transition is None:
            return
        for listener in self._listeners:
            listener(transition)
