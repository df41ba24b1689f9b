"""Graceful shutdown on SIGTERM/SIGINT, for ``serve`` and ``run`` alike.

The first signal stops new cycles and asks the running cycle to stop after its current
stage; if that stage is still running when the grace period ends, SIGALRM aborts it
(the exception unwinds through pytest or an HTTP call, the workspace is discarded and the
cycle is recorded ``aborted``). A fast-forward into the target is never interrupted: the
abort waits for it. A second signal aborts at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from hephaestus.agent.models import CycleAborted
from hephaestus.agent.orchestrator import CycleRunner

_LOG = logging.getLogger("hephaestus.service")
_RETRY_CRITICAL = 0.05


@dataclass
class GracefulShutdown:
    """Signal handling for one runner; ``event`` is set once a stop was requested."""

    runner: CycleRunner
    grace: float
    event: threading.Event = field(default_factory=threading.Event)
    signal_name: str | None = None
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def install(self) -> None:
        """Handle SIGINT, SIGTERM and SIGALRM (call from the main thread)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_alarm)

    def request(self, name: str = "stop") -> None:
        """Stop starting cycles; the running cycle ends after its current stage."""
        first = not self.event.is_set()
        self.signal_name = self.signal_name or name
        self.event.set()
        self.runner.request_stop()
        if first:
            for listener in self.listeners:
                listener()
            _LOG.info("shutdown requested", extra={"signal": name, "grace_s": self.grace})

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set():  # second signal: no more waiting
            self._abort(f"second {name}")
            return
        self.request(name)
        if self.runner.guard.running:
            if self.grace <= 0:
                self._abort(name)
            else:
                signal.setitimer(signal.ITIMER_REAL, self.grace)

    def _on_alarm(self, _signum: int, _frame: FrameType | None) -> None:
        self._abort("grace period over")

    def _abort(self, why: str) -> None:
        guard = self.runner.guard
        if not guard.running:
            return
        if guard.critical:  # never cut a fast-forward short; try again shortly
            signal.setitimer(signal.ITIMER_REAL, _RETRY_CRITICAL)
            return
        _LOG.warning("aborting the running cycle", extra={"why": why})
        raise CycleAborted(why)

    def uninstall(self) -> None:
        """Cancel a pending alarm and restore the default handlers."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(
                sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler
            )
