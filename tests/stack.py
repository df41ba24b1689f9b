"""A real Prometheus scraping a real ``hephaestus serve``, for tests that read both back."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from factories import free_port, make_target_repo, serve, stop_process, wait_until

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
    """The running service and the Prometheus scraping it."""

    service: str
    prometheus: str
    repo: Path
    logs: dict[str, Path]
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.prometheus}/api/v1/{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        return self.api("query", query=promql)["result"]

    def wait_until(self, check: Any, timeout: float, what: str) -> Any:
        return wait_until(check, timeout, what, self.procs, self.logs.values())


@contextmanager
def prometheus_stack(
    prometheus: str, root: Path, env: Mapping[str, str] | None = None, interval: float = 0.5
) -> Iterator[Stack]:
    """Serve the sample project and scrape it every second until at least one cycle is in."""
    repo = make_target_repo(root / "target", sample=True)
    service_port, prometheus_port = free_port(), free_port()
    (root / "prometheus.yml").write_text(PROMETHEUS_YML.replace("{port}", str(service_port)))
    logs = {"hephaestus": root / "serve.log", "prometheus": root / "prometheus.log"}
    stack = Stack(
        f"http://127.0.0.1:{service_port}", f"http://127.0.0.1:{prometheus_port}", repo, logs
    )
    with ExitStack() as cleanup:
        stack.procs.append(
            cleanup.enter_context(
                serve(repo, service_port, logs["hephaestus"], env=env, interval=interval)
            )
        )
        with logs["prometheus"].open("w") as log:
            scraper = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                    "--enable-feature=exemplar-storage",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        cleanup.callback(stop_process, scraper)
        stack.procs.append(scraper)
        stack.wait_until(
            lambda: httpx.get(f"{stack.prometheus}/-/ready", timeout=5).status_code == 200,
            20,
            "Prometheus to be ready",
        )
        stack.wait_until(
            lambda: stack.query('up{job="hephaestus"} == 1'), 20, "Prometheus to scrape the service"
        )
        stack.wait_until(
            lambda: stack.query('sum(hephaestus_cycles_total{job="hephaestus"}) >= 1'),
            30,
            "a cycle to be scraped",
        )
        yield stack


def exemplars(stack: Stack) -> list[dict[str, Any]]:
    """Exemplars of the cycle-duration histogram from the last five minutes."""
    now = time.time()
    return stack.api(
        "query_exemplars",
        query="hephaestus_cycle_duration_seconds_bucket",
        start=now - 300,
        end=now + 60,
    )
