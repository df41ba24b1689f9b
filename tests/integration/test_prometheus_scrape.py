"""Issue 3's "done when": a real Prometheus scraping ``hephaestus serve`` sees every series.

``hephaestus serve`` runs on the sample project as a subprocess; a real Prometheus (with
exemplar storage) scrapes it every second. Everything is then read back through
Prometheus's HTTP API, as a dashboard or an operator would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import require_binary
from factories import free_port, make_target_repo

from hephaestus.telemetry.catalog import CATALOG, MetricSpec

pytestmark = pytest.mark.slow

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
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
    logs: dict[str, Path]

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.prometheus}/api/v1/{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def tails(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{path.read_text()[-2000:]}" for name, path in self.logs.items()
        )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(
    check: Callable[[], Any], timeout: float, what: str, stack: Stack, procs: list[subprocess.Popen]
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(
                    f"{proc.args[0]} exited with {proc.returncode} while waiting for "
                    f"{what}\n{stack.tails()}"
                )
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{stack.tails()}")


def query(stack: Stack, promql: str) -> list[dict[str, Any]]:
    return stack.api("query", query=promql)["result"]


def has_exemplars(stack: Stack) -> list[dict[str, Any]]:
    now = time.time()
    return stack.api(
        "query_exemplars",
        query="hephaestus_cycle_duration_seconds_bucket",
        start=now - 300,
        end=now + 60,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_binary("prometheus")
    root = tmp_path_factory.mktemp("scrape")
    repo = make_target_repo(root / "target", sample=True)
    service_port, prometheus_port = free_port(), free_port()
    (root / "prometheus.yml").write_text(PROMETHEUS_YML.replace("{port}", str(service_port)))
    logs = {"hephaestus": root / "serve.log", "prometheus": root / "prometheus.log"}
    env = {**os.environ, "HEPHAESTUS_LOGGING_FORMAT": "json"}
    env.pop("HEPHAESTUS_CONFIG", None)
    stack = Stack(f"http://127.0.0.1:{service_port}", f"http://127.0.0.1:{prometheus_port}", logs)
    procs: list[subprocess.Popen] = []
    try:
        with logs["hephaestus"].open("w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "hephaestus",
                        "serve",
                        "--project",
                        str(repo),
                        "--port",
                        str(service_port),
                        "--interval",
                        "0.5",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
        with logs["prometheus"].open("w") as log:
            procs.append(
                subprocess.Popen(
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
            )

        wait_until(
            lambda: httpx.get(f"{stack.prometheus}/-/ready", timeout=5).status_code == 200,
            90,
            "Prometheus to be ready",
            stack,
            procs,
        )
        wait_until(
            lambda: query(stack, 'up{job="hephaestus"} == 1'),
            90,
            "Prometheus to scrape the service",
            stack,
            procs,
        )
        wait_until(
            lambda: query(stack, 'sum(hephaestus_cycles_total{job="hephaestus"}) >= 1'),
            90,
            "a cycle to be scraped",
            stack,
            procs,
        )
        wait_until(lambda: has_exemplars(stack), 90, "exemplars", stack, procs)
        yield stack
    finally:
        for proc in reversed(procs):
            stop(proc)


def test_prometheus_scrapes_the_service_without_errors(stack):
    [target] = [
        t for t in stack.api("targets")["activeTargets"] if t["labels"]["job"] == "hephaestus"
    ]

    assert target["health"] == "up"
    assert target["lastError"] == ""


def series_selector(spec: MetricSpec) -> str:
    """The stored series of a catalog metric (a histogram is stored as its parts)."""
    return f"{spec.name}_count" if spec.kind == "histogram" else spec.name


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.name)
def test_every_catalog_metric_has_a_series_in_prometheus(stack, spec):
    series = stack.api("series", **{"match[]": f'{series_selector(spec)}{{job="hephaestus"}}'})

    assert series, f"no series for {spec.name}"
    for labels in series:  # Prometheus drops empty-valued labels (error_type="" on success)
        assert set(labels) - {"__name__", "job", "instance"} <= set(spec.labels), labels


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.name)
def test_every_catalog_metric_has_its_type_in_the_target_metadata(stack, spec):
    # Prometheus negotiates OpenMetrics, whose counter families are named without _total.
    family = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
    metadata = stack.api("targets/metadata", match_target='{job="hephaestus"}', metric=family)

    assert metadata, f"{family} is not in the target's metadata"
    assert {m["type"] for m in metadata} == {spec.kind}
    if spec.name != "stamina_retries_total":  # stamina brings its own help text
        assert {m["help"] for m in metadata} == {spec.help}


def test_the_cycle_duration_exemplars_lead_to_recorded_cycles(stack):
    exemplars = [e for group in has_exemplars(stack) for e in group["exemplars"]]
    cycles = httpx.get(f"{stack.service}/api/cycles", params={"limit": 500}, timeout=10)
    by_trace = {row["trace_id"]: row for row in cycles.json()["cycles"]}

    assert exemplars
    for exemplar in exemplars:
        trace_id = exemplar["labels"]["trace_id"]
        assert TRACE_ID.match(trace_id)
        assert re.match(r"^[0-9a-f]{16}$", exemplar["labels"]["span_id"])
        row = by_trace[trace_id]  # an exemplar leads to its cycle and correlation id
        assert row["status"] == "finished" and row["correlation_id"]


def test_the_scraped_cycle_count_matches_the_memory(stack):
    scraped = query(stack, 'sum(hephaestus_cycles_total{job="hephaestus"})')
    health = httpx.get(f"{stack.service}/api/health", timeout=10).json()

    # Prometheus lags the service by at most a scrape interval and the cycles since then.
    assert 1 <= float(scraped[0]["value"][1]) <= health["cycles_run"]
