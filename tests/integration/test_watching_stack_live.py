"""The shipped watching stack, live: every link an operator relies on, proven end to end.

``hephaestus serve`` runs on a copy of the sample with injected model failures
(``HEPHAESTUS_CHAOS_LLM_ERROR_RATE``), exporting spans to a real OTLP receiver. A real
Prometheus runs the shipped rule files with a config derived from the shipped one (only
targets, intervals and the Alertmanager address changed), and a real Alertmanager runs the
shipped routing with its receivers pointed at a local webhook. Everything is then read back
through their HTTP APIs, as Grafana and an operator would.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import require_binary
from factories import ROOT, free_port, make_target_repo
from otlp_receiver import OTLPReceiver
from stack import (
    Processes,
    PrometheusAPI,
    WebhookReceiver,
    alertmanager_args,
    is_ready,
    prometheus_args,
)

from hephaestus.observability import find
from hephaestus.observability.promql import substitute
from hephaestus.telemetry.catalog import CATALOG

pytestmark = pytest.mark.slow

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
GENERATED_DIRS = ("deploy/prometheus/rules", "grafana/dashboards", "grafana/provisioning")
RECEIVERS = {"pager": "/pager", "tickets": "/tickets", "heartbeat": "/heartbeat"}
# Fast retries, breakers and backoff, so the faults show within seconds, not minutes.
AGENT_ENV = {
    "HEPHAESTUS_CHAOS_LLM_ERROR_RATE": "0.6",
    "HEPHAESTUS_CHAOS_SEED": "7",
    "HEPHAESTUS_RESILIENCE_RETRY_WAIT_INITIAL": "0.01",
    "HEPHAESTUS_RESILIENCE_RETRY_WAIT_MAX": "0.02",
    "HEPHAESTUS_RESILIENCE_RETRY_WAIT_JITTER": "0",
    "HEPHAESTUS_RESILIENCE_BREAKER_RESET_TIMEOUT": "0.5",
    "HEPHAESTUS_RESILIENCE_FAILURE_BACKOFF": "0.05",
    "HEPHAESTUS_RESILIENCE_FAILURE_BACKOFF_MAX": "0.2",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}
RECOVERIES = 'hephaestus_recovery_seconds_count{job="hephaestus"}'
# Grafana's built-in variables, as Grafana would fill them for a recent time range.
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "10m"}


@dataclass
class Live:
    """The running stack."""

    prometheus: PrometheusAPI
    alertmanager: str
    webhook: WebhookReceiver
    spans: OTLPReceiver
    procs: Processes


def derived_prometheus_config(root: Path, ports: dict[str, int]) -> Path:
    """The shipped prometheus.yml with only targets, intervals and Alertmanager changed."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    targets = {
        "hephaestus": ports["hephaestus"],
        "prometheus": ports["prometheus"],
        "alertmanager": ports["alertmanager"],
    }
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]
    [alertmanagers] = config["alerting"]["alertmanagers"]
    alertmanagers["static_configs"] = [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]
    (root / "rules").symlink_to(PROMETHEUS_DIR / "rules")  # rule_files stay as shipped
    path = root / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def derived_alertmanager_config(root: Path, webhook: str) -> Path:
    """The shipped alertmanager.yml with each receiver's webhook pointed at ``webhook``."""
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    for receiver in config["receivers"]:
        [hook] = receiver["webhook_configs"]
        hook["url"] = webhook + RECEIVERS[receiver["name"]]
    path = root / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    prometheus = require_binary("prometheus")
    alertmanager = require_binary("prometheus-alertmanager", "alertmanager")
    root = tmp_path_factory.mktemp("live")
    repo = make_target_repo(root / "target", sample=True)
    ports = {name: free_port() for name in ("hephaestus", "prometheus", "alertmanager")}
    procs = Processes(root)
    with OTLPReceiver() as spans, WebhookReceiver() as webhook:
        env = {**AGENT_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": spans.endpoint}
        api = PrometheusAPI(f"http://127.0.0.1:{ports['prometheus']}")
        am_url = f"http://127.0.0.1:{ports['alertmanager']}"
        try:
            procs.serve(repo, ports["hephaestus"], env, interval=0.2)
            am_config = derived_alertmanager_config(root, webhook.url)
            procs.start(
                "alertmanager",
                alertmanager_args(alertmanager, am_config, root / "am", ports["alertmanager"]),
            )
            procs.wait_until(
                lambda: httpx.get(f"http://127.0.0.1:{ports['hephaestus']}/healthz").is_success,
                30,
                "the agent to listen",
            )
            config = derived_prometheus_config(root, ports)
            # Alerts that fire before Alertmanager is discovered are resent after this
            # delay (1m by default): a test-speed knob, like the intervals.
            resend = "--rules.alert.resend-delay=2s"
            args = prometheus_args(prometheus, config, root / "tsdb", ports["prometheus"], resend)
            procs.start("prometheus", args)
            procs.wait_until(lambda: is_ready(api.url) and is_ready(am_url), 30, "readiness")
            yield Live(api, am_url, webhook, spans, procs)
        finally:
            procs.stop_all()


def alerts_in_prometheus(live: Live, name: str, state: str = "firing") -> list[dict[str, Any]]:
    return [
        a
        for a in live.prometheus.api("alerts")["alerts"]
        if a["labels"]["alertname"] == name and a["state"] == state
    ]


# -- the target and the catalog -------------------------------------------------------------------
def test_the_agent_is_up_and_exports_every_catalog_metric(live):
    live.procs.wait_until(
        lambda: live.prometheus.query('up{job="hephaestus"} == 1'), 30, "the agent to be up"
    )
    missing = []
    for spec in CATALOG:
        series = f"{spec.name}_count" if spec.kind == "histogram" else spec.name
        if not live.prometheus.query(f'{series}{{job="hephaestus"}}'):
            missing.append(spec.name)

    assert not missing, f"catalog metrics Prometheus does not have: {missing}"


# -- injected faults become alerts ----------------------------------------------------------------
def test_injected_model_failures_fire_the_success_slo_alert_in_prometheus(live):
    firing = live.procs.wait_until(
        lambda: alerts_in_prometheus(live, "HephaestusSuccessRateBudgetBurn"),
        150,
        "the injected faults to fire HephaestusSuccessRateBudgetBurn",
    )
    cycles = live.prometheus.query('instance:hephaestus_cycles:increase1d{job="hephaestus"}')

    assert float(cycles[0]["value"][1]) >= 10  # a tier waits for ten cycles
    for alert in firing:
        factor = {"1h": 8, "6h": 6, "1d": 3, "3d": 1}[alert["labels"]["long_window"]]
        assert alert["labels"]["severity"] == ("critical" if factor >= 6 else "warning")
        assert alert["labels"]["job"] == "hephaestus"
        assert float(alert["value"]) > factor  # the value is the long window's burn rate


# -- exemplars lead to exported traces ------------------------------------------------------------
def test_cycle_duration_exemplars_carry_trace_ids_the_agent_exported(live):
    groups = live.procs.wait_until(
        lambda: live.prometheus.exemplars("hephaestus_cycle_duration_seconds_bucket"),
        30,
        "exemplars on the cycle-duration histogram",
    )
    trace_ids = {e["labels"]["trace_id"] for g in groups for e in g["exemplars"]}
    live.spans.wait_for(lambda _: trace_ids <= live.spans.trace_ids(), timeout=15)
    roots = {
        s["trace_id"]
        for s in live.spans.snapshot()
        if s["name"] == "invoke_workflow hephaestus.cycle"
    }

    assert trace_ids
    assert trace_ids <= roots, f"exemplar traces never exported: {trace_ids - roots}"


# -- every recording rule and every panel has data ------------------------------------------------
def generated_files() -> dict[str, str]:
    return {
        path.relative_to(ROOT).as_posix(): path.read_text()
        for folder in GENERATED_DIRS
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
    }


EXPRESSIONS = find(generated_files())


def numbers(result: list[dict[str, Any]]) -> list[float]:
    """The values of an instant vector that are numbers (NaN is no data to look at)."""
    return [v for v in (float(r["value"][1]) for r in result) if not math.isnan(v)]


def wait_for_a_recovery(live: Live) -> None:
    """Until a failure streak has ended in a success, MTTR is NaN (nothing to average)."""
    live.procs.wait_until(
        lambda: numbers(
            live.prometheus.query('hephaestus_recovery_seconds_count{job="hephaestus"} > 0')
        ),
        120,
        "a failure streak to end in a success",
    )


def test_every_recording_rule_has_a_value(live):
    wait_for_a_recovery(live)
    records = [e.where.rsplit("/", 1)[1] for e in EXPRESSIONS if e.kind == "recording"]
    live.procs.wait_until(
        lambda: numbers(live.prometheus.query(f'{records[-1]}{{job="hephaestus"}}')),
        30,
        "the rules to be evaluated",
    )

    empty = [r for r in records if not numbers(live.prometheus.query(f'{r}{{job="hephaestus"}}'))]

    assert len(records) > 40
    assert not empty, f"recording rules without a number: {empty}"


def variable_values(live: Live, selection: str) -> dict[str, str]:
    """``$instance`` and ``$model`` as Grafana fills them: All, or the first value listed."""
    values = dict(GRAFANA_VARIABLES)
    calls = 'gen_ai_client_operation_duration_seconds_count{job="hephaestus"}'
    for name, label, series in (
        ("instance", "instance", 'up{job="hephaestus"}'),
        ("model", "gen_ai_request_model", calls),
    ):
        listed = live.prometheus.api(f"label/{label}/values", **{"match[]": series})
        assert listed, f"the ${name} variable lists nothing"
        # Grafana escapes a selected value for a regex matcher, inside a PromQL string
        values[name] = ".*" if selection == "All" else re.escape(listed[0]).replace("\\", "\\\\")
    return values


@pytest.mark.parametrize("selection", ["All", "one"])
def test_every_dashboard_panel_returns_data(live, selection):
    wait_for_a_recovery(live)
    live.procs.wait_until(  # the Firing alerts table lists more than Watchdog
        lambda: alerts_in_prometheus(live, "HephaestusSuccessRateBudgetBurn"), 150, "an alert"
    )
    values = {**variable_values(live, selection), "__tags": 'job="hephaestus"'}
    panels = [e for e in EXPRESSIONS if e.kind in {"panel", "variable", "datasource"}]

    empty = [
        e.where for e in panels if not numbers(live.prometheus.query(substitute(e.expr, values)))
    ]

    assert len(panels) > 30
    assert not empty, f"panels without a number to show ({selection}): {empty}"


def test_prometheus_runs_every_shipped_rule_group(live):
    groups = live.prometheus.api("rules")["groups"]
    shipped = {e.where.split("/")[0] for e in EXPRESSIONS if e.kind in {"recording", "alert"}}

    assert {g["name"] for g in groups} == shipped
    assert all(rule["health"] == "ok" for g in groups for rule in g["rules"]), groups


# -- alerts reach Alertmanager and the receiver their severity names ------------------------------
def test_the_fired_slo_alert_reaches_the_receiver_of_its_severity_only(live):
    firing = live.procs.wait_until(
        lambda: alerts_in_prometheus(live, "HephaestusSuccessRateBudgetBurn"), 150, "the alert"
    )
    severity = firing[0]["labels"]["severity"]
    receiver = "/pager" if severity == "critical" else "/tickets"

    delivered = live.procs.wait_until(
        lambda: [
            a
            for a in live.webhook.alerts(receiver)
            if a["labels"]["alertname"] == "HephaestusSuccessRateBudgetBurn"
        ],
        90,
        f"Alertmanager to deliver the {severity} alert to {receiver}",
    )

    assert {a["labels"]["severity"] for a in delivered} == {severity}
    assert delivered[0]["annotations"]["runbook_url"].endswith(
        "docs/runbooks.md#hephaestussuccessratebudgetburn"
    )
    assert all(a["labels"]["severity"] == "critical" for a in live.webhook.alerts("/pager"))
    assert all(a["labels"]["severity"] == "warning" for a in live.webhook.alerts("/tickets"))
    assert {a["labels"]["alertname"] for a in live.webhook.alerts("/heartbeat")} <= {"Watchdog"}


def test_watchdog_reaches_alertmanager_and_the_heartbeat_receiver(live):
    def in_alertmanager() -> list[dict[str, Any]]:
        alerts = httpx.get(f"{live.alertmanager}/api/v2/alerts", timeout=5).json()
        return [a for a in alerts if a["labels"]["alertname"] == "Watchdog"]

    [watchdog] = live.procs.wait_until(in_alertmanager, 60, "Watchdog in Alertmanager")
    heartbeats = live.procs.wait_until(
        lambda: live.webhook.alerts("/heartbeat"), 60, "a heartbeat at the webhook"
    )

    assert watchdog["status"]["state"] == "active"
    assert [r["name"] for r in watchdog["receivers"]] == ["heartbeat"]
    assert {a["labels"]["alertname"] for a in heartbeats} == {"Watchdog"}
    assert not [a for a in live.webhook.alerts("/pager") if a["labels"]["alertname"] == "Watchdog"]
