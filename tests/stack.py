"""Real processes for the stack tests: ``hephaestus serve``, Prometheus, Alertmanager.

A :class:`Processes` starts each one with its output in a log file, waits for conditions
while failing fast (with the log tails) when a process dies, and stops them all.
:func:`prometheus_stack` is the common case: a real Prometheus scraping a real ``serve``.
The :class:`WebhookReceiver` is a real HTTP server that keeps Alertmanager's webhook payloads.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from factories import (
    clean_env,
    free_port,
    make_target_repo,
    serve_command,
    stop_process,
    wait_until,
)


@dataclass
class Processes:
    """The processes one test module runs, each logging to ``root/<name>.log``."""

    root: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``args`` as ``name``."""
        with (self.root / f"{name}.log").open("w") as log:
            self.procs[name] = subprocess.Popen(
                list(args), stdout=log, stderr=subprocess.STDOUT, env=dict(env or os.environ)
            )

    def log(self, name: str) -> str:
        """Everything ``name`` has written so far."""
        return (self.root / f"{name}.log").read_text(errors="replace")

    def tails(self) -> str:
        """The end of every log, for a failure message."""
        return "\n".join(f"--- {name} ---\n{self.log(name)[-2000:]}" for name in self.procs)

    def serve(
        self, repo: Path, port: int, env: Mapping[str, str] | None = None, interval: float = 0.5
    ) -> None:
        """``hephaestus serve`` on ``repo`` as ``hephaestus``, with JSON logs and ``env``."""
        self.start("hephaestus", serve_command(repo, port, interval=interval), clean_env(env))

    def wait_until(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``check`` until it returns something truthy; fail if a process dies first."""
        logs = [self.root / f"{name}.log" for name in self.procs]
        return wait_until(check, timeout, what, self.procs.values(), logs)

    def stop_all(self) -> None:
        """SIGTERM each process (last started first), then SIGKILL what does not exit."""
        for proc in reversed(self.procs.values()):
            stop_process(proc)


def prometheus_args(binary: str, config: Path, data: Path, port: int, *extra: str) -> list[str]:
    """A Prometheus on 127.0.0.1:``port`` that keeps exemplars."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        *extra,
    ]


def alertmanager_args(binary: str, config: Path, data: Path, port: int) -> list[str]:
    """An Alertmanager on 127.0.0.1:``port``, without clustering (no 9094 listener)."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]


def is_ready(url: str) -> bool:
    """Whether a Prometheus or Alertmanager at ``url`` answers ``/-/ready``."""
    return httpx.get(f"{url}/-/ready", timeout=5).status_code == 200


@dataclass(frozen=True)
class PrometheusAPI:
    """Prometheus's HTTP API, read the way a dashboard or an operator reads it."""

    url: str

    def api(self, path: str, **params: Any) -> Any:
        """``GET /api/v1/<path>``; the ``data`` of a successful answer."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        return self.api("query", query=promql)["result"]

    def exemplars(self, series: str, seconds: float = 600) -> list[dict[str, Any]]:
        """Exemplars of ``series`` over the last ``seconds``."""
        now = time.time()
        return self.api("query_exemplars", query=series, start=now - seconds, end=now + 60)


class WebhookReceiver:
    """A real HTTP server keeping every JSON payload POSTed to it, by path."""

    def __init__(self) -> None:
        self.payloads: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.payloads.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def alerts(self, path: str) -> list[dict[str, Any]]:
        """Every alert Alertmanager delivered to ``path`` so far."""
        with self._lock:
            return [a for p, body in self.payloads if p == path for a in body["alerts"]]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


PROMETHEUS_YML = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: hephaestus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


@dataclass
class Stack:
    """A running ``hephaestus serve`` on the sample project and the Prometheus scraping it."""

    service: str
    prometheus: str
    repo: Path
    procs: Processes

    def api(self, path: str, **params: Any) -> Any:
        """Prometheus's ``GET /api/v1/<path>``."""
        return PrometheusAPI(self.prometheus).api(path, **params)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        return PrometheusAPI(self.prometheus).query(promql)

    def wait_until(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """:meth:`Processes.wait_until`."""
        return self.procs.wait_until(check, timeout, what)


@contextmanager
def prometheus_stack(
    prometheus: str, root: Path, env: Mapping[str, str] | None = None, interval: float = 0.5
) -> Iterator[Stack]:
    """Serve the sample project and scrape it every second until at least one cycle is in."""
    repo = make_target_repo(root / "target", sample=True)
    service_port, prometheus_port = free_port(), free_port()
    config = root / "prometheus.yml"
    config.write_text(PROMETHEUS_YML.replace("{port}", str(service_port)))
    procs = Processes(root)
    stack = Stack(
        f"http://127.0.0.1:{service_port}", f"http://127.0.0.1:{prometheus_port}", repo, procs
    )
    try:
        procs.serve(repo, service_port, env, interval)
        procs.start(
            "prometheus", prometheus_args(prometheus, config, root / "data", prometheus_port)
        )
        stack.wait_until(lambda: is_ready(stack.prometheus), 20, "Prometheus to be ready")
        stack.wait_until(
            lambda: stack.query('up{job="hephaestus"} == 1'), 20, "Prometheus to scrape the service"
        )
        stack.wait_until(
            lambda: stack.query('sum(hephaestus_cycles_total{job="hephaestus"}) >= 1'),
            30,
            "a cycle to be scraped",
        )
        yield stack
    finally:
        procs.stop_all()


def exemplars(stack: Stack) -> list[dict[str, Any]]:
    """Exemplars of the cycle-duration histogram from the last five minutes."""
    return PrometheusAPI(stack.prometheus).exemplars(
        "hephaestus_cycle_duration_seconds_bucket", seconds=300
    )
