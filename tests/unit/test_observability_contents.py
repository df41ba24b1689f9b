"""What the shipped rules, dashboards and data sources promise an operator.

Every alert can fire, says how bad it is, explains itself and links its runbook; every
dashboard is reachable, filterable and labelled; the promtool tests cover every alert.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from factories import ROOT

from hephaestus.observability.expressions import panels
from hephaestus.observability.kpis import SLOS
from hephaestus.observability.panels import TAG

RULES = ROOT / "deploy" / "prometheus" / "rules"
PROMTOOL_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.test.yml"))
DASHBOARDS = {
    p.stem: json.loads(p.read_text()) for p in (ROOT / "grafana" / "dashboards").glob("*.json")
}
DATASOURCES = yaml.safe_load(
    (ROOT / "grafana/provisioning/datasources/datasources.yml").read_text()
)
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def rules(kind: str) -> Iterator[dict[str, Any]]:
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from (rule for rule in group["rules"] if kind in rule)


ALERTS = list(rules("alert"))
RECORDS = list(rules("record"))


# -- alerts ---------------------------------------------------------------------------------------
def test_the_issue_s_alerts_are_all_there():
    assert {a["alert"] for a in ALERTS} == {
        "HephaestusSuccessRateBudgetBurn",
        "HephaestusAvailabilityBudgetBurn",
        "HephaestusDown",
        "HephaestusAgentResponseSlow",
        "HephaestusThroughputLow",
        "HephaestusRecoverySlow",
        "HephaestusInternalErrors",
        "HephaestusCircuitBreakerOpen",
        "HephaestusRetryStorm",
        "HephaestusLLMErrorsHigh",
        "HephaestusTelemetryExportFailing",
        "HephaestusStalled",
        "Watchdog",
    }


@pytest.mark.parametrize(
    "alert", ALERTS, ids=lambda a: f"{a['alert']}-{a['labels'].get('long_window', '')}"
)
def test_every_alert_has_severity_summary_description_and_runbook(alert):
    name, labels, notes = alert["alert"], alert["labels"], alert["annotations"]

    assert re.fullmatch(r"(Hephaestus[A-Z][A-Za-z]+|Watchdog)", name)
    assert (
        labels["severity"] == "none"
        if name == "Watchdog"
        else labels["severity"] in {"critical", "warning"}
    )
    assert "{{" not in notes["summary"], "the summary is static; details go in the description"
    assert "$value" in notes["description"], "the description shows the value"
    assert notes["runbook_url"] == f"docs/runbooks.md#{name.lower()}"


def test_every_runbook_url_lands_on_a_section_of_the_runbooks():
    text = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, flags=re.M)
    }

    for alert in ALERTS:
        assert alert["annotations"]["runbook_url"].split("#")[1] in anchors


def test_pages_are_kept_for_what_needs_a_person_now():
    pages = {a["alert"] for a in ALERTS if a["labels"]["severity"] == "critical"}

    assert pages == {
        "HephaestusDown",
        "HephaestusSuccessRateBudgetBurn",
        "HephaestusAvailabilityBudgetBurn",
        "HephaestusInternalErrors",
        "HephaestusStalled",
    }


@pytest.mark.parametrize("slo", SLOS, ids=lambda slo: slo.name)
def test_every_burn_rate_tier_can_fire_and_both_tiers_exist(slo):
    for window in slo.windows:
        # burning `factor` times the budget needs this share of bad events: it must be < 1
        assert slo.error_threshold(window) < 1, f"{window} can never fire at {slo.objective}"
    assert {w.severity for w in slo.windows} == {"critical", "warning"}

    tiers = [a for a in ALERTS if a["alert"] == slo.alert]
    assert sorted((a["labels"]["long_window"], a["labels"]["severity"]) for a in tiers) == sorted(
        (w.long, w.severity) for w in slo.windows
    )


def test_the_success_slo_does_not_use_a_factor_it_cannot_reach():
    success = next(slo for slo in SLOS if slo.name == "success_rate")

    assert max(w.factor for w in success.windows) < 1 / success.budget
    assert "14.4x would need" in (RULES / "hephaestus-alerts.yml").read_text()


def test_recording_rules_are_named_level_metric_operations():
    for rule in RECORDS:
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]
    assert len({r["record"] for r in RECORDS}) == len(RECORDS)


# -- promtool tests cover every alert -------------------------------------------------------------
def promtool_cases() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for path in PROMTOOL_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                yield case["alertname"], case.get("exp_alerts") or []


def test_every_alert_and_tier_fires_in_a_promtool_test_with_labels_and_annotations():
    fired = set()
    for name, expected in promtool_cases():
        for alert in expected:
            assert set(alert["exp_annotations"]) == {"summary", "description", "runbook_url"}
            assert "severity" in alert["exp_labels"]
            fired.add(
                (name, alert["exp_labels"]["severity"], alert["exp_labels"].get("long_window"))
            )

    rules_ = {(a["alert"], a["labels"]["severity"], a["labels"].get("long_window")) for a in ALERTS}
    assert rules_ <= fired, f"alerts never shown firing: {rules_ - fired}"


def test_every_alert_but_watchdog_stays_silent_in_a_promtool_test():
    silent = {name for name, expected in promtool_cases() if not expected}

    assert {a["alert"] for a in ALERTS} - silent == {"Watchdog"}  # it must always fire


def test_promtool_evaluates_recording_rules_before_the_alerts_that_read_them():
    groups = [
        group["name"]
        for name in ("hephaestus-recording.yml", "hephaestus-alerts.yml")
        for group in yaml.safe_load((RULES / name).read_text())["groups"]
    ]
    for path in PROMTOOL_TESTS:
        assert yaml.safe_load(path.read_text())["group_eval_order"] == groups, path.name


# -- dashboards -----------------------------------------------------------------------------------
def test_the_four_dashboards_have_stable_uids():
    assert {d["uid"] for d in DASHBOARDS.values()} == {
        "hephaestus-overview",
        "hephaestus-pipeline",
        "hephaestus-llm",
        "hephaestus-slo",
    }
    assert all(d["uid"] == stem for stem, d in DASHBOARDS.items())


@pytest.mark.parametrize("board", DASHBOARDS.values(), ids=lambda d: d["uid"])
def test_every_dashboard_filters_by_datasource_and_instance_and_links_the_others(board):
    variables = {v["name"]: v for v in board["templating"]["list"]}
    [link] = board["links"]

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["multi"] and instance["includeAll"] and instance["allValue"] == ".*"
    assert TAG in board["tags"]
    assert link["type"] == "dashboards" and link["tags"] == [TAG]
    assert link["includeVars"] and link["keepTime"]


def test_the_llm_dashboard_filters_by_model():
    variables = {v["name"]: v for v in DASHBOARDS["hephaestus-llm"]["templating"]["list"]}

    assert "gen_ai_request_model" in variables["model"]["query"]
    queries = [t["expr"] for p in panels(DASHBOARDS["hephaestus-llm"]) for t in p["targets"]]
    assert sum('gen_ai_request_model=~"$model"' in q for q in queries) >= 5


@pytest.mark.parametrize(
    "panel",
    [p for d in DASHBOARDS.values() for p in panels(d)],
    ids=lambda p: p["title"],
)
def test_every_panel_has_a_title_description_unit_and_the_datasource_variable(panel):
    assert panel["title"] and len(panel["description"]) > 20
    assert panel["fieldConfig"]["defaults"]["unit"]
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert panel["targets"]
    for target in panel["targets"]:
        assert target["datasource"]["uid"] == "${datasource}" and target["refId"]
        if panel["type"] in {"timeseries", "heatmap"}:  # graphs: rates over Grafana's interval
            assert all(r == "$__rate_interval" for r in re.findall(r"\[([^\]]+)\]", target["expr"]))
        assert 'instance=~"$instance"' in target["expr"] or "ALERTS" in target["expr"]


def test_panel_ids_are_unique_within_a_dashboard():
    for board in DASHBOARDS.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]


def test_histogram_panels_show_exemplars_that_lead_to_traces():
    with_exemplars = [
        p["title"]
        for d in DASHBOARDS.values()
        for p in panels(d)
        if any(t.get("exemplar") for t in p["targets"])
    ]

    assert {"Cycle duration", "Stage duration p95", "Latency p50 / p95 / p99"} <= set(
        with_exemplars
    )


# -- data sources and the compose stack -----------------------------------------------------------
def test_prometheus_links_exemplars_to_jaeger_and_jaeger_links_spans_back():
    sources = {s["type"]: s for s in DATASOURCES["datasources"]}
    prometheus, jaeger = sources["prometheus"], sources["jaeger"]

    assert prometheus["uid"] == "prometheus" and jaeger["uid"] == "jaeger"
    [destination] = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert destination == destination | {"name": "trace_id", "datasourceUid": "jaeger"}
    links = jaeger["jsonData"]["tracesToMetrics"]
    assert links["datasourceUid"] == "prometheus"
    assert links["tags"] == [{"key": "service.name", "value": "job"}]
    assert all("${__tags}" in q["query"] for q in links["queries"])


def test_the_agent_s_service_name_is_its_scrape_job_so_traces_link_to_metrics():
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"] for job in prometheus["scrape_configs"]}

    assert "hephaestus" in jobs
    assert COMPOSE["services"]["hephaestus"]["environment"]["OTEL_SERVICE_NAME"] == "hephaestus"


def test_the_grafana_image_matches_the_sdk_build_the_dashboards_are_typed_against():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [pin] = [
        d
        for d in project["optional-dependencies"]["observability"]
        if "grafana-foundation-sdk" in d
    ]
    sdk_version = re.search(r"!(\d+\.\d+)\.", pin).group(1)
    image = COMPOSE["services"]["grafana"]["image"]

    assert image.startswith(f"grafana/grafana:{sdk_version}.")
