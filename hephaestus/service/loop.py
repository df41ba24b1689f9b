"""Run cycles continuously until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from rich.console import Console

from hephaestus.agent.build import build_runner
from hephaestus.config import Config

_LOG = logging.getLogger("hephaestus.service")


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it between cycles and while waiting."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None

    def install(self) -> None:
        """Handle SIGINT and SIGTERM by setting the flag (main thread only)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self.event.set()


def serve_forever(config: Config, project: Path, *, interval: float,
                  console: Console | None = None, stop: StopFlag | None = None) -> int:
    """Run cycles with ``interval`` seconds between them until stopped; return the exit code."""
    stop = stop or StopFlag()
    stop.install()
    runner = build_runner(config, project)
    _LOG.info("service started", extra={"project": str(runner.repo.root), "interval_s": interval})
    try:
        while not stop.event.is_set():
            result = runner.run_cycle()
            if console is not None:
                console.print(f"cycle {result.cycle_number}: {result.outcome.value} "
                              f"({result.reason.value}) in {result.duration:.2f}s")
            stop.event.wait(interval)
    finally:
        runner.close()
        _LOG.info("service stopped", extra={"signal": stop.signal_name})
    return 0
