"""PerformanceAnalyzer reading a real Prometheus that scrapes a real, unreliable ``serve``.

Half of the model calls fail (injected faults), retries and breakers react, and the
analysis read back through PromQL must find what the memory database also records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import require_binary
from factories import run_cli
from stack import Stack, prometheus_stack

from hephaestus.performance import PerformanceAnalyzer, memory_analyzer, prometheus_analyzer
from hephaestus.performance.prometheus_source import PrometheusSource

pytestmark = pytest.mark.slow

UNRELIABLE = {
    "HEPHAESTUS_CHAOS_LLM_ERROR_RATE": "0.5",
    "HEPHAESTUS_CHAOS_LLM_TIMEOUT_SHARE": "0",
    "HEPHAESTUS_CHAOS_SEED": "3",
    "HEPHAESTUS_RESILIENCE_RETRY_ATTEMPTS": "2",
    "HEPHAESTUS_RESILIENCE_RETRY_WAIT_INITIAL": "0.01",
    "HEPHAESTUS_RESILIENCE_RETRY_WAIT_JITTER": "0",
    "HEPHAESTUS_RESILIENCE_BREAKER_FAILURE_THRESHOLD": "1",
    "HEPHAESTUS_RESILIENCE_BREAKER_RESET_TIMEOUT": "0.2",
    "HEPHAESTUS_RESILIENCE_FAILURE_BACKOFF": "0",
    "HEPHAESTUS_VALIDATION_DEFAULT_STRATEGY": "SYNTAX_ONLY",
}
WINDOW = 3600.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_binary("prometheus")
    root = tmp_path_factory.mktemp("analyzer")
    with prometheus_stack(prometheus, root, env=UNRELIABLE, interval=0.2) as stack:
        stack.wait_until(
            lambda: stack.query(  # what Prometheus saw happen, not what happened before
                "sum(increase(hephaestus_cycles_total[1h])) >= 8"
                ' and on() sum(increase(hephaestus_cycles_total{outcome="failed"}[1h])) >= 2'
                " and on() sum(increase(hephaestus_circuit_breaker_transitions_total"
                '{to_state="open"}[1h])) >= 1'
                # the stage assertions below need a plan that Prometheus saw happen
                " and on() sum(increase(hephaestus_stage_duration_seconds_count"
                '{stage="plan"}[1h])) >= 1'
            ),
            120,
            "eight scraped cycles with failures, an opened breaker and a planned one",
        )
        yield stack


@pytest.fixture(scope="module")
def analyses(stack: Stack) -> dict[str, dict[str, Any]]:
    from_prometheus = prometheus_analyzer(stack.prometheus, WINDOW).analyze_agent_performance()
    memory = stack.repo / ".hephaestus" / "memory.db"
    return {
        "prometheus": from_prometheus,
        "memory": memory_analyzer(memory, WINDOW).analyze_agent_performance(),
    }


def test_prometheus_sees_the_cycles_memory_recorded(stack, analyses):
    scraped = analyses["prometheus"]["overall_performance"]["cycles"]
    recorded = analyses["memory"]["overall_performance"]["cycles"]
    cycles_run = httpx.get(f"{stack.service}/api/health", timeout=10).json()["cycles_run"]

    assert 8 <= scraped <= cycles_run  # Prometheus lags by at most a scrape
    assert scraped <= recorded + 1  # increase() may extrapolate a little past the samples
    measured = analyses["prometheus"]["measurements"]
    assert measured["source"] == f"prometheus:{stack.prometheus}"
    assert 0 < measured["observed_s"] <= WINDOW  # since the service process started
    assert set(measured["outcomes"]) <= {"succeeded", "rejected", "failed", "aborted"}
    assert measured["outcomes"]["failed"] >= 2
    assert set(measured["reasons"]) >= {"llm_error"}


def test_only_prometheus_knows_uptime_retries_and_breakers(analyses):
    kpis = {k["key"]: k for k in analyses["prometheus"]["overall_performance"]["kpis"]}
    memory_kpis = {k["key"]: k for k in analyses["memory"]["overall_performance"]["kpis"]}

    assert kpis["uptime"]["state"] != "no_data" and 0.5 <= kpis["uptime"]["value"] <= 1.0
    assert memory_kpis["uptime"]["state"] == "no_data"
    measured = analyses["prometheus"]["measurements"]
    assert measured["retries"] >= 1 and measured["breaker_opens"] >= 1
    assert analyses["memory"]["measurements"]["retries"] is None


def test_the_retry_breaker_and_success_rules_fire_from_prometheus(analyses):
    rules = {r["rule"]: r for r in analyses["prometheus"]["recommendations"]}

    assert "breakers_opened" in rules
    assert rules["breakers_opened"]["evidence"]["opens"] >= 1
    assert "frequent_retries" in rules
    assert "low_success" in rules and rules["low_success"]["evidence"]["success_rate"] < 0.9


def test_stage_and_model_time_come_from_the_histograms(analyses):
    measured = analyses["prometheus"]["measurements"]

    assert {"scan", "objective", "plan"} <= set(measured["stages"])
    assert all(s["total_s"] >= 0 and s["count"] >= 1 for s in measured["stages"].values())
    assert measured["models"]  # gen_ai_client_operation_duration_seconds by model
    assert measured["llm_calls"] >= 8
    for bottleneck in analyses["prometheus"]["bottlenecks"]:
        assert 0 <= bottleneck["share"] <= 1.01 and bottleneck["budget_s"] == 5.0


def test_the_report_command_reads_prometheus(stack):
    result = run_cli(
        "report", "--prometheus-url", stack.prometheus, "--since", "1h", "--format", "json"
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["overall_performance"]["cycles"] >= 8


def test_a_window_before_the_service_existed_is_not_enough_data(stack):
    source = PrometheusSource(stack.prometheus)
    before = time.time() - 7200  # an hour-long window that ended an hour before the test
    try:
        analysis = PerformanceAnalyzer(lambda: source.measure(3600, now=before))
        result = analysis.analyze_agent_performance()
    finally:
        source.close()

    overall = result["overall_performance"]
    assert (overall["status"], overall["score"], overall["cycles"]) == ("not enough data", None, 0)
    assert result["measurements"]["notes"] == [
        "Prometheus has no hephaestus_build_info in the window"
    ]
