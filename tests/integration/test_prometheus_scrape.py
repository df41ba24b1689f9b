"""Issue 3's "done when": a real Prometheus scraping ``hephaestus serve`` sees every series.

``hephaestus serve`` runs on the sample project as a subprocess; a real Prometheus (with
exemplar storage) scrapes it every second. Everything is then read back through
Prometheus's HTTP API, as a dashboard or an operator would.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import require_binary
from factories import free_port, make_target_repo
from stack import Processes, PrometheusAPI, is_ready, prometheus_args, serve_args

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
    prometheus: PrometheusAPI


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_binary("prometheus")
    root = tmp_path_factory.mktemp("scrape")
    repo = make_target_repo(root / "target", sample=True)
    service_port, prometheus_port = free_port(), free_port()
    (root / "prometheus.yml").write_text(PROMETHEUS_YML.replace("{port}", str(service_port)))
    env = {**os.environ, "HEPHAESTUS_LOGGING_FORMAT": "json"}
    env.pop("HEPHAESTUS_CONFIG", None)
    api = PrometheusAPI(f"http://127.0.0.1:{prometheus_port}")
    stack = Stack(f"http://127.0.0.1:{service_port}", api)
    procs = Processes(root)
    try:
        procs.start("hephaestus", serve_args(repo, service_port, 0.5), env)
        procs.start(
            "prometheus",
            prometheus_args(prometheus, root / "prometheus.yml", root / "data", prometheus_port),
        )
        procs.wait_until(lambda: is_ready(api.url), 20, "Prometheus to be ready")
        procs.wait_until(
            lambda: api.query('up{job="hephaestus"} == 1'), 20, "Prometheus to scrape the service"
        )
        procs.wait_until(
            lambda: api.query('sum(hephaestus_cycles_total{job="hephaestus"}) >= 1'),
            30,
            "a cycle to be scraped",
        )
        procs.wait_until(lambda: has_exemplars(api), 15, "exemplars")
        yield stack
    finally:
        procs.stop_all()


def has_exemplars(api: PrometheusAPI) -> list[dict[str, Any]]:
    return api.exemplars("hephaestus_cycle_duration_seconds_bucket", seconds=300)


def test_prometheus_scrapes_the_service_without_errors(stack):
    [target] = [
        t
        for t in stack.prometheus.api("targets")["activeTargets"]
        if t["labels"]["job"] == "hephaestus"
    ]

    assert target["health"] == "up"
    assert target["lastError"] == ""


def series_selector(spec: MetricSpec) -> str:
    """The stored series of a catalog metric (a histogram is stored as its parts)."""
    return f"{spec.name}_count" if spec.kind == "histogram" else spec.name


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.name)
def test_every_catalog_metric_has_a_series_in_prometheus(stack, spec):
    series = stack.prometheus.api(
        "series", **{"match[]": f'{series_selector(spec)}{{job="hephaestus"}}'}
    )

    assert series, f"no series for {spec.name}"
    for labels in series:  # Prometheus drops empty-valued labels (error_type="" on success)
        assert set(labels) - {"__name__", "job", "instance"} <= set(spec.labels), labels


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.name)
def test_every_catalog_metric_has_its_type_in_the_target_metadata(stack, spec):
    # Prometheus negotiates OpenMetrics, whose counter families are named without _total.
    family = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
    metadata = stack.prometheus.api(
        "targets/metadata", match_target='{job="hephaestus"}', metric=family
    )

    assert metadata, f"{family} is not in the target's metadata"
    assert {m["type"] for m in metadata} == {spec.kind}
    if spec.name != "stamina_retries_total":  # stamina brings its own help text
        assert {m["help"] for m in metadata} == {spec.help}


def test_the_cycle_duration_exemplars_lead_to_recorded_cycles(stack):
    exemplars = [e for group in has_exemplars(stack.prometheus) for e in group["exemplars"]]
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
    scraped = stack.prometheus.query('sum(hephaestus_cycles_total{job="hephaestus"})')
    health = httpx.get(f"{stack.service}/api/health", timeout=10).json()

    # Prometheus lags the service by at most a scrape interval and the cycles since then.
    assert 1 <= float(scraped[0]["value"][1]) <= health["cycles_run"]
