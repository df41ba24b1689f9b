"""Real processes for the stack tests: ``hephaestus serve``, Prometheus, Alertmanager.

A :class:`Processes` starts each one with its output in a log file, waits for conditions
while failing fast (with the log tails) when a process dies, and stops them all. The
:class:`WebhookReceiver` is a real HTTP server that keeps Alertmanager's webhook payloads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest


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

    def wait_until(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``check`` until it returns something truthy; fail if a process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    pytest.fail(
                        f"{name} exited with {proc.returncode} while waiting for {what}\n"
                        f"{self.tails()}"
                    )
            try:
                found = check()
            except httpx.TransportError:
                found = None
            if found:
                return found
            time.sleep(0.25)
        pytest.fail(f"timed out after {timeout}s waiting for {what}\n{self.tails()}")

    def stop_all(self) -> None:
        """SIGTERM each process (last started first), then SIGKILL what does not exit."""
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def serve_args(repo: Path, port: int, interval: float) -> list[str]:
    """``hephaestus serve`` on ``repo``, as an operator starts it."""
    return [
        sys.executable,
        "-m",
        "hephaestus",
        "serve",
        "--project",
        str(repo),
        "--port",
        str(port),
        "--interval",
        str(interval),
    ]


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
