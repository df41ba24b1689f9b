"""``hephaestus serve``: cycles continuously, HTTP endpoints alongside, until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from hephaestus.agent.build import build_runner
from hephaestus.agent.models import CycleResult
from hephaestus.agent.orchestrator import CycleRunner
from hephaestus.config import Config
from hephaestus.service.http import ServiceAPI, ServiceHTTPServer
from hephaestus.service.monitor import SystemMonitor
from hephaestus.service.queue import ObjectiveQueue

_LOG = logging.getLogger("hephaestus.service")


@dataclass
class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it between cycles and while waiting."""

    event: threading.Event = field(default_factory=threading.Event)
    signal_name: str | None = None
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def install(self) -> None:
        """Handle SIGINT and SIGTERM by setting the flag (main thread only)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def set(self, name: str = "stop") -> None:
        """Ask the service to stop and tell the listeners."""
        if self.event.is_set():
            return
        self.signal_name = name
        self.event.set()
        for listener in self.listeners:
            listener()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.set(signal.Signals(signum).name)


class Service:
    """A runner, its monitor, the objective queue and the HTTP endpoints, run as one."""

    def __init__(self, runner: CycleRunner, *, interval: float, host: str, port: int,
                 stop: StopFlag | None = None,
                 on_cycle: Callable[[CycleResult], None] | None = None) -> None:
        self.runner = runner
        self.interval = interval
        self.stop = stop or StopFlag()
        self.queue = ObjectiveQueue()
        self.monitor = SystemMonitor(runner)
        self.http = ServiceHTTPServer(ServiceAPI(self.monitor, self.queue), host, port)
        self.on_cycle = on_cycle
        self.stop.listeners.append(self._stopping)

    def _stopping(self) -> None:
        self.monitor.stopping = True
        self.queue.wake.set()

    def run(self) -> int:
        """Serve until stopped; return the exit code."""
        self.http.start()
        host, port = self.http.address
        _LOG.info("service started", extra={"project": str(self.runner.repo.root),
                                            "interval_s": self.interval,
                                            "listen": f"http://{host}:{port}"})
        try:
            while not self.stop.event.is_set():
                self._one_cycle()
                self.queue.wake.wait(self.interval if not len(self.queue) else 0)
                self.queue.wake.clear()
        finally:
            self.http.stop()
            self.runner.close()
            _LOG.info("service stopped", extra={"signal": self.stop.signal_name})
        return 0

    def _one_cycle(self) -> None:
        queued = self.queue.pop()
        result = self.runner.run_cycle(
            objective=queued.objective if queued else None,
            correlation_id=queued.correlation_id if queued else None)
        self.monitor.cycle_finished(result)
        if self.on_cycle is not None:
            self.on_cycle(result)


def serve_forever(config: Config, project: Path, *, interval: float, host: str, port: int,
                  on_cycle: Callable[[CycleResult], None] | None = None) -> int:
    """Build the runner and run the service in this (main) thread until a signal stops it."""
    stop = StopFlag()
    stop.install()
    runner = build_runner(config, project)
    return Service(runner, interval=interval, host=host, port=port, stop=stop,
                   on_cycle=on_cycle).run()
