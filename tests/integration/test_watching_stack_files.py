"""The shipped stack files, checked by the real tools: promtool, amtool, Alertmanager, compose.

Under ``CI=true`` a missing binary fails these tests (``make test`` installs the Debian
packages); locally they skip.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import require_binary
from factories import ROOT, eventually, free_port
from stack import Processes, alertmanager_args, is_ready

PROMETHEUS_YML = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
COMPOSE_YML = ROOT / "docker-compose.yml"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=180, check=False, cwd=ROOT
    )


# -- Prometheus -----------------------------------------------------------------------------------
def test_promtool_accepts_the_prometheus_config_and_its_rule_files():
    result = run(require_binary("promtool"), "check", "config", PROMETHEUS_YML)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_promtool_accepts_the_rule_files():
    rules = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
    result = run(require_binary("promtool"), "check", "rules", *rules)

    assert len(rules) == 2
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_promtool_rule_tests_pass():
    tests = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.test.yml"))
    result = run(require_binary("promtool"), "test", "rules", *tests)

    assert len(tests) >= 3
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_a_broken_promtool_expectation_fails(tmp_path):
    shipped = ROOT / "deploy" / "prometheus" / "tests" / "alerts.test.yml"
    broken = tmp_path / "tests" / "alerts.test.yml"
    broken.parent.mkdir()
    (tmp_path / "rules").symlink_to(ROOT / "deploy" / "prometheus" / "rules")
    broken.write_text(shipped.read_text().replace("severity: critical", "severity: warning", 1))

    result = run(require_binary("promtool"), "test", "rules", broken)

    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


# -- Alertmanager ---------------------------------------------------------------------------------
def test_amtool_accepts_the_alertmanager_config():
    result = run(require_binary("amtool"), "check-config", ALERTMANAGER_YML)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 receivers" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=HephaestusDown", "severity=critical", "instance=a:9464"], "pager"),
        (["alertname=HephaestusSuccessRateBudgetBurn", "severity=critical"], "pager"),
        (["alertname=HephaestusThroughputLow", "severity=warning"], "tickets"),
        (["alertname=HephaestusSuccessRateBudgetBurn", "severity=warning"], "tickets"),
        (["alertname=Watchdog", "severity=none"], "heartbeat"),
        (["alertname=Watchdog", "severity=critical"], "heartbeat"),  # never a page
        (["alertname=SomethingElse"], "tickets"),
    ],
)
def test_alerts_are_routed_by_severity_and_watchdog_to_the_heartbeat(labels, receiver):
    amtool = require_binary("amtool")
    result = run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_YML}",
        f"--verify.receivers={receiver}",
        *labels,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_routing_groups_by_alertname_and_instance():
    route = yaml.safe_load(ALERTMANAGER_YML.read_text())["route"]

    assert route["group_by"] == ["alertname", "instance"]
    assert route["routes"][0]["matchers"] == ['alertname="Watchdog"']  # matched first


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager running the shipped config (its receivers point nowhere here)."""
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    root = tmp_path_factory.mktemp("alertmanager")
    port = free_port()
    procs = Processes(root)
    procs.start("alertmanager", alertmanager_args(binary, ALERTMANAGER_YML, root / "data", port))
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_until(lambda: is_ready(url), 30, "Alertmanager to be ready")
        yield url
    finally:
        procs.stop_all()


def post_alerts(url: str, *alerts: dict[str, str]) -> None:
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = [{"labels": labels, "startsAt": start} for labels in alerts]
    assert httpx.post(f"{url}/api/v2/alerts", json=body, timeout=5).status_code == 200


def test_down_inhibits_the_other_alerts_of_its_instance_only(alertmanager):
    post_alerts(
        alertmanager,
        {"alertname": "HephaestusDown", "severity": "critical", "instance": "a:9464"},
        {"alertname": "HephaestusStalled", "severity": "critical", "instance": "a:9464"},
        {"alertname": "HephaestusLLMErrorsHigh", "severity": "warning", "instance": "a:9464"},
        {"alertname": "HephaestusStalled", "severity": "critical", "instance": "b:9464"},
        {"alertname": "Watchdog", "severity": "none"},
    )

    def states() -> dict[tuple[str, str], str]:
        alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        found = {
            (a["labels"]["alertname"], a["labels"].get("instance", "")): a["status"]["state"]
            for a in alerts
        }
        return found if len(found) == 5 and "unprocessed" not in found.values() else {}

    found = eventually(states, 15, interval=0.2)

    assert found == {
        ("HephaestusDown", "a:9464"): "active",
        ("HephaestusStalled", "a:9464"): "suppressed",
        ("HephaestusLLMErrorsHigh", "a:9464"): "suppressed",
        ("HephaestusStalled", "b:9464"): "active",
        ("Watchdog", ""): "active",
    }


# -- docker-compose -------------------------------------------------------------------------------
def test_docker_compose_validates_the_stack():
    result = run(require_binary("docker-compose"), "-f", COMPOSE_YML, "config", "-q")

    assert result.returncode == 0, result.stdout + result.stderr


SERVICES = yaml.safe_load(COMPOSE_YML.read_text())["services"]


def test_the_whole_stack_is_in_compose():
    assert set(SERVICES) == {"hephaestus", "prometheus", "alertmanager", "grafana", "jaeger"}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_is_pinned_healthchecked_and_bound_to_localhost(name):
    service = SERVICES[name]

    if "image" in service:  # a pinned release, never a moving tag
        assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", service["image"]), service["image"]
    assert service["healthcheck"]["test"][0] == "CMD"
    for port in service.get("ports", []):
        assert port.startswith("127.0.0.1:"), port


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_file_or_folder_compose_mounts_exists(name):
    for volume in SERVICES[name].get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
    build = SERVICES[name].get("build")
    if build:
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()


def test_prometheus_in_compose_keeps_exemplars_and_loads_the_rules_and_tests_folder():
    prometheus = SERVICES["prometheus"]

    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert yaml.safe_load(PROMETHEUS_YML.read_text())["rule_files"] == ["rules/*.yml"]


def test_grafana_has_no_default_admin_login_and_anonymous_viewers_only():
    environment = SERVICES["grafana"]["environment"]

    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert environment["GF_AUTH_DISABLE_LOGIN_FORM"].endswith(":-true}")
    assert environment["GF_AUTH_BASIC_ENABLED"].endswith(":-false}")
    assert "admin" not in environment["GF_SECURITY_ADMIN_PASSWORD"].split(":-")[-1]


def test_the_agent_image_runs_as_an_unprivileged_user():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]

    assert users and users[-1] not in {"root", "0"}
