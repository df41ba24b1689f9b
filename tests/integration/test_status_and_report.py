"""``hephaestus status`` and ``hephaestus report`` as an operator runs them.

Against a healthy service, a failing ``hephaestus serve`` (every model call fails) and a
stopped one (nothing listens).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from factories import (
    Served,
    free_port,
    http_service,
    make_target_repo,
    one_service_cycle,
    run_cli,
    serve_sample,
    service_url,
)

FAILING = {
    "HEPHAESTUS_CHAOS_LLM_ERROR_RATE": "1.0",
    "HEPHAESTUS_CHAOS_LLM_TIMEOUT_SHARE": "0",
    "HEPHAESTUS_RESILIENCE_RETRY_ATTEMPTS": "1",
    "HEPHAESTUS_RESILIENCE_FAILURE_BACKOFF": "0",
}


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_sample(
        tmp_path_factory.mktemp("failing"), cycles=6, env=FAILING, interval=0.1
    ) as served:
        yield served


# -- status ---------------------------------------------------------------------------------
def test_status_of_a_healthy_service_exits_0_with_its_kpis(sample_repo):
    with http_service(sample_repo) as service:
        one_service_cycle(service)
        table = run_cli("status", "--url", service_url(service))
        as_json = run_cli("status", "--url", service_url(service), "--format", "json")

    assert table.returncode == 0, table.stdout + table.stderr
    assert "healthy" in table.stdout
    for title in ("Success rate", "Agent response p95", "Objectives per day", "MTTR"):
        assert title in table.stdout
    assert "\x1b[" not in table.stdout  # no colour codes when the output is not a terminal
    status = json.loads(as_json.stdout)
    assert (as_json.returncode, status["healthy"], status["breaches"]) == (0, True, [])
    assert status["cycles_run"] == 1


def test_status_of_a_failing_service_exits_1_and_names_the_breach_and_the_failures(failing):
    result = run_cli("status", "--url", failing.url, "--format", "json")
    table = run_cli("status", "--url", failing.url)  # cycles go on failing meanwhile

    assert table.returncode == result.returncode == 1
    status = json.loads(result.stdout)
    assert any(b.startswith("Success rate 0.0 %") for b in status["breaches"])
    failures = status["last_failures"]
    assert failures and {f["reason"] for f in failures} == {"llm_error"}
    assert re.search(r"│ llm_error\s+│ [0-9a-f-]{36} │", table.stdout), table.stdout
    assert "breach" in table.stdout and "Last failures" in table.stdout


def test_status_of_a_stopped_service_exits_2_with_one_line():
    result = run_cli("status", "--url", f"http://127.0.0.1:{free_port()}")

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("hephaestus: error: cannot reach the service at http://127.0.0.1:")


def test_status_of_something_else_is_not_mistaken_for_a_service(llm_server):
    result = run_cli("status", "--url", llm_server.base_url)

    assert result.returncode == 2
    assert "is this a Hephaestus service" in result.stderr


# -- report ---------------------------------------------------------------------------------
def test_report_from_memory_names_the_failures_and_what_to_do(failing):
    result = run_cli("report", "--project", failing.repo, "--format", "json")

    assert result.returncode == 0, result.stderr
    analysis = json.loads(result.stdout)
    overall = analysis["overall_performance"]
    assert overall["status"] == "ok" and overall["cycles"] >= 6
    assert 0 <= overall["score"] < 100
    rules = {r["rule"]: r for r in analysis["recommendations"]}
    assert rules["low_success"]["evidence"]["reason"] == "llm_error"
    assert "Success rate is 0 %" in rules["low_success"]["message"]


def test_report_as_markdown_is_ready_to_paste(failing):
    result = run_cli("report", "--project", failing.repo, "--since", "1h", "--format", "markdown")

    assert result.returncode == 0
    assert result.stdout.startswith("## Hephaestus performance, last 1h")
    assert "| Success rate | 0.0 % | ≥ 90.0 % | ❌ breach |" in result.stdout
    assert "- Success rate is 0 %" in result.stdout


def test_report_table_on_a_project_that_never_ran_says_not_enough_data(tmp_path):
    repo = make_target_repo(tmp_path / "fresh", {"a.py": "x = 1\n"})

    result = run_cli("report", "--project", repo)

    assert result.returncode == 0
    assert "not enough data" in result.stdout
    assert not (repo / ".hephaestus" / "memory.db").exists()  # reading never creates it


def test_report_from_a_prometheus_that_is_not_there_exits_1():
    result = run_cli("report", "--prometheus-url", f"http://127.0.0.1:{free_port()}")

    assert result.returncode == 1
    assert "cannot reach Prometheus" in result.stderr


def test_report_rejects_a_bad_window():
    result = run_cli("report", "--since", "yesterday")

    assert result.returncode == 2
    assert "e.g. 30m, 24h, 7d" in result.stderr
