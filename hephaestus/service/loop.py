"""``hephaestus serve``: cycles continuously, HTTP endpoints alongside, until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hephaestus.agent.build import build_runner, span_file_path
from hephaestus.agent.models import CycleResult
from hephaestus.agent.orchestrator import CycleRunner
from hephaestus.config import Config
from hephaestus.service.asgi import build_app
from hephaestus.service.cycles import CycleRequest, run_cycles
from hephaestus.service.dashboard import Dashboard
from hephaestus.service.http import ServiceAPI
from hephaestus.service.monitor import SystemMonitor
from hephaestus.service.queue import ObjectiveQueue
from hephaestus.service.server import HTTPLimits, ServiceHTTPServer
from hephaestus.service.shutdown import GracefulShutdown
from hephaestus.service.trace_view import TraceView
from hephaestus.telemetry.logs import CycleLogBuffer

_LOG = logging.getLogger("hephaestus.service")


class Service:
    """A runner, its monitor, the objective queue and the HTTP endpoints, run as one."""

    def __init__(
        self,
        runner: CycleRunner,
        *,
        interval: float,
        host: str,
        port: int,
        grace: float = 10.0,
        on_cycle: Callable[[CycleResult], None] | None = None,
    ) -> None:
        self.runner = runner
        self.interval = interval
        self.stop = GracefulShutdown(runner, grace)
        self.queue = ObjectiveQueue()
        self.monitor = SystemMonitor(runner)
        self.dashboard = Dashboard(self.monitor, self.queue)
        self.logs = CycleLogBuffer()
        self.http = ServiceHTTPServer(
            build_app(self._routes()),
            host,
            port,
            HTTPLimits.from_config(runner.config.service),
            on_stop=(self.dashboard.close, self._forget_logs),
        )
        logging.getLogger("hephaestus").addHandler(self.logs)
        self.on_cycle = on_cycle
        self.stop.listeners.append(self._stopping)

    def _routes(self) -> dict[str, dict[str, Any]]:
        trace = TraceView(
            self.runner,
            span_file_path(self.runner.config, self.runner.repo),
            jaeger_url=self.runner.config.service.jaeger_url,
            logs=self.logs,
        )
        api = ServiceAPI(self.monitor, self.queue)
        return {**api.routes, **self.dashboard.routes, **trace.routes}

    def _forget_logs(self) -> None:
        logging.getLogger("hephaestus").removeHandler(self.logs)

    def _stopping(self) -> None:
        self.monitor.stopping = True
        self.queue.wake.set()

    def run(self) -> int:
        """Serve until stopped; return the exit code."""
        self.http.start()
        host, port = self.http.address
        _LOG.info(
            "service started",
            extra={
                "project": str(self.runner.repo.root),
                "interval_s": self.interval,
                "listen": f"http://{host}:{port}",
            },
        )
        try:
            self._cycles()
        finally:
            self.http.stop()
            self.runner.close()
            _LOG.info("service stopped", extra={"signal": self.stop.signal_name})
        return 0

    def _cycles(self, count: int | None = None) -> None:
        """Run ``count`` cycles (``None``: until stopped) through the one cycle loop."""
        run_cycles(
            self.runner,
            self.stop.event,
            next_request=self._next_request,
            on_cycle=self._finished,
            wait=self._wait,
            cycles=count,
            interval=self.interval,
        )

    def run_one_cycle(self) -> None:
        """One cycle exactly as :meth:`run` runs each (queued objective first, monitor told).

        Tests drive a service whose loop is not running this way.
        """
        self._cycles(1)

    def _next_request(self, _number: int) -> CycleRequest:
        queued = self.queue.pop()
        if queued is None:
            return CycleRequest()
        return CycleRequest(queued.objective, queued.correlation_id)

    def _finished(self, result: CycleResult) -> None:
        self.monitor.cycle_finished(result)
        if self.on_cycle is not None:
            self.on_cycle(result)

    def _wait(self, pause: float) -> None:
        """Sleep ``pause`` seconds, less when an objective is queued or a stop is requested."""
        self.queue.wake.wait(pause if not len(self.queue) else 0)
        self.queue.wake.clear()


def serve_forever(
    config: Config,
    project: Path,
    *,
    interval: float,
    host: str,
    port: int,
    on_cycle: Callable[[CycleResult], None] | None = None,
) -> int:
    """Build the runner and run the service in this (main) thread until a signal stops it."""
    runner = build_runner(config, project)
    try:
        service = Service(
            runner,
            interval=interval,
            host=host,
            port=port,
            grace=config.resilience.shutdown_grace,
            on_cycle=on_cycle,
        )
    except BaseException:
        runner.close()  # release the repository for the next attempt
        raise
    service.stop.install()
    return service.run()
