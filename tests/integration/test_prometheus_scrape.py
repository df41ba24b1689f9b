"""Issue 3's "done when": a real Prometheus scraping ``hephaestus serve`` sees every series.

``hephaestus serve`` runs on the sample project as a subprocess; a real Prometheus (with
exemplar storage) scrapes it every second. Everything is then read back through
Prometheus's HTTP API, as a dashboard or an operator would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from conftest import require_binary
from stack import Stack, exemplars, prometheus_stack

from hephaestus.telemetry.catalog import CATALOG, MetricSpec

pytestmark = pytest.mark.slow

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_binary("prometheus")
    with prometheus_stack(prometheus, tmp_path_factory.mktemp("scrape")) as stack:
        stack.wait_until(lambda: exemplars(stack), 15, "exemplars")
        yield stack


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
    found = [e for group in exemplars(stack) for e in group["exemplars"]]
    cycles = httpx.get(f"{stack.service}/api/cycles", params={"limit": 500}, timeout=10)
    by_trace = {row["trace_id"]: row for row in cycles.json()["cycles"]}

    assert found
    for exemplar in found:
        trace_id = exemplar["labels"]["trace_id"]
        assert TRACE_ID.match(trace_id)
        assert re.match(r"^[0-9a-f]{16}$", exemplar["labels"]["span_id"])
        row = by_trace[trace_id]  # an exemplar leads to its cycle and correlation id
        assert row["status"] == "finished" and row["correlation_id"]


def test_the_scraped_cycle_count_matches_the_memory(stack):
    scraped = stack.query('sum(hephaestus_cycles_total{job="hephaestus"})')
    health = httpx.get(f"{stack.service}/api/health", timeout=10).json()

    # Prometheus lags the service by at most a scrape interval and the cycles since then.
    assert 1 <= float(scraped[0]["value"][1]) <= health["cycles_run"]
