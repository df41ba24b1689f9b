"""The metric catalog (docs/observability.md), read the way Prometheus reads them.

Cycles run for real (offline provider, or a scripted OpenAI-compatible server over HTTP)
and ``/metrics`` is scraped over a real socket. Metrics live on prometheus-client's default
registry and accumulate over every test of the process, so counts are asserted as
differences around the cycle under test, never as absolute values.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stamina
from conftest import require_binary
from factories import (
    PRICING,
    Reply,
    answer_by_task,
    http_service,
    make_agent,
    make_target_repo,
    model_like_reply,
    objective,
    one_service_cycle,
    openai_config,
    service_url,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from hephaestus import __version__
from hephaestus.agent.models import CycleResult, Outcome, Reason
from hephaestus.telemetry import catalog
from hephaestus.telemetry.catalog import CATALOG, default_metrics

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
HEX_ID = re.compile(r"\b[0-9a-f]{16,}\b", re.I)  # span, trace or commit id


def value(name: str, **labels: str) -> float:
    """The current value of one sample on the default registry (0 when it does not exist)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def all_samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in REGISTRY.collect()
        for s in family.samples
    }


def family_name(spec: catalog.MetricSpec) -> str:
    """The family name a parser reports: counters drop their ``_total`` suffix."""
    return spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name


# -- one offline cycle, scraped over HTTP ------------------------------------------------------
@dataclass
class Scrape:
    """What one offline cycle left on ``/metrics``, and the spans it exported."""

    result: CycleResult
    started: float
    text: str
    text_type: str
    openmetrics: str
    openmetrics_type: str
    spans: tuple[ReadableSpan, ...]


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrape]:
    repo = make_target_repo(tmp_path_factory.mktemp("metrics") / "target", sample=True)
    exporter = InMemorySpanExporter()
    with http_service(repo, span_exporter=exporter) as service:
        started = time.time()
        one_service_cycle(service)
        with httpx.Client(base_url=service_url(service), timeout=10) as client:
            text = client.get("/metrics")
            openmetrics = client.get("/metrics", headers={"Accept": OPENMETRICS})
        assert text.status_code == openmetrics.status_code == 200
        result = service.monitor.last
        assert result is not None
        spans = exporter.get_finished_spans()
    yield Scrape(
        result,
        started,
        text.text,
        text.headers["Content-Type"],
        openmetrics.text,
        openmetrics.headers["Content-Type"],
        spans,
    )


def test_the_offline_cycle_under_test_succeeded(scrape):
    assert (scrape.result.outcome, scrape.result.reason) == (Outcome.SUCCEEDED, Reason.COMMITTED)


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.name)
def test_every_catalog_metric_is_declared_in_the_text_exposition(scrape, spec):
    # The 0.0.4 text format names a counter's family with its _total suffix (prometheus-client
    # renders it so); OpenMetrics drops the suffix. Prometheus reads whichever it negotiated.
    assert f"# TYPE {spec.name} {spec.kind}\n" in scrape.text
    if spec.name != "stamina_retries_total":  # stamina brings its own help text
        assert f"# HELP {spec.name} {spec.help}\n" in scrape.text


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.name)
def test_every_catalog_metric_has_a_series_after_one_cycle(scrape, spec):
    # Every metric with labels has its known label sets declared at zero when the runner is
    # built (cycle outcomes, stages, agents, configured models, breakers, and stamina's retry
    # of the LLM call), so dashboards and rules never see "no data" for a healthy process.
    [family] = [f for f in text_families(scrape.text) if f.name == family_name(spec)]
    names = {sample.name for sample in family.samples}

    assert family.type == spec.kind
    if spec.kind == "histogram":
        assert {f"{spec.name}_bucket", f"{spec.name}_count", f"{spec.name}_sum"} <= names
    elif spec.kind == "counter":
        assert f"{spec.name}" in names
    else:
        assert names == {spec.name}
    label_sets = {
        frozenset(s.labels) - {"le"}
        for s in family.samples
        if s.name in (spec.name, f"{spec.name}_count")
    }
    assert label_sets == {frozenset(spec.labels)}


def test_no_label_value_is_an_id(scrape):
    values = {
        (sample.name, name, label)
        for family in text_families(scrape.text)
        for sample in family.samples
        for name, label in sample.labels.items()
    }

    assert values  # the exposition was parsed
    assert not {v for v in values if UUID.search(v[2]) or HEX_ID.search(v[2])}
    assert not {v for v in values if v[1] in ("correlation_id", "trace_id", "span_id")}


def test_build_info_is_one_for_the_running_version(scrape):
    series = [
        s
        for f in text_families(scrape.text)
        if f.name == "hephaestus_build_info"
        for s in f.samples
    ]

    assert [(s.labels, s.value) for s in series] == [({"version": __version__}, 1.0)]


def test_the_text_exposition_passes_promtool_with_no_findings(scrape):
    promtool = require_binary("promtool")

    check = subprocess.run(
        [promtool, "check", "metrics"],
        input=scrape.text,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert scrape.text_type.startswith("text/plain; version=0.0.4")
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")


# -- exemplars ---------------------------------------------------------------------------------
def exemplars_since(scrape: Scrape) -> list[tuple[str, dict[str, str]]]:
    """``(sample name, exemplar labels)`` of every exemplar recorded by the cycle under test."""
    found = []
    for family in openmetrics_families(scrape.openmetrics):
        for sample in family.samples:
            exemplar = sample.exemplar
            if exemplar is not None and float(exemplar.timestamp) >= scrape.started:
                found.append((sample.name, exemplar.labels))
    return found


def test_the_openmetrics_scrape_carries_exemplars_of_the_cycle(scrape):
    names = {name for name, _ in exemplars_since(scrape)}

    assert scrape.openmetrics_type.startswith("application/openmetrics-text")
    assert scrape.openmetrics.endswith("# EOF\n")
    assert re.search(
        r'^hephaestus_cycles_total\{.*\} \S+ # \{(span_id|trace_id)="', scrape.openmetrics, re.M
    )
    assert {
        "hephaestus_cycles_total",
        "hephaestus_cycle_duration_seconds_bucket",
        "hephaestus_stage_duration_seconds_bucket",
        "hephaestus_agent_response_seconds_bucket",
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_token_usage_bucket",
        "hephaestus_validation_tests_total",
    } <= names
    assert "# {" not in scrape.text  # the 0.0.4 text format has no exemplars


def test_every_exemplar_points_at_an_exported_span(scrape):
    exported = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")): s
        for s in scrape.spans
    }
    exemplars = exemplars_since(scrape)

    assert exemplars
    for name, labels in exemplars:
        assert set(labels) == {"trace_id", "span_id"}, name
        assert (labels["trace_id"], labels["span_id"]) in exported, name
        assert labels["trace_id"] == scrape.result.trace_id, name  # one trace per cycle


def test_the_cycle_counter_exemplar_is_the_cycle_root_span(scrape):
    exported = {format(s.context.span_id, "016x"): s for s in scrape.spans}
    [labels] = [
        labels for name, labels in exemplars_since(scrape) if name == "hephaestus_cycles_total"
    ]

    root = exported[labels["span_id"]]
    assert root.name == "invoke_workflow hephaestus.cycle"
    assert root.parent is None
    assert root.attributes["hephaestus.correlation_id"] == scrape.result.correlation_id


# -- behaviour of individual metrics -----------------------------------------------------------
def test_a_failure_streak_sets_the_gauge_and_its_end_observes_recovery(llm_server, sample_repo):
    # Failures are invalid plans rather than HTTP errors: they involve no retry and no
    # circuit breaker, so the streak is exactly what this test scripts.
    runner = make_agent(openai_config(llm_server), sample_repo)
    failing = "no plan today"
    try:
        llm_server._default = answer_by_task()
        start = runner.run_cycle()  # whatever earlier tests left: a success ends any streak
        gauge = [value("hephaestus_consecutive_failures")]
        count_before = value("hephaestus_recovery_seconds_count")
        sum_before = value("hephaestus_recovery_seconds_sum")

        llm_server._default = answer_by_task(
            next_objective=objective("Rewrite pricing A"), patch_plan=failing
        )
        first = runner.run_cycle()
        first_returned = time.time()
        gauge.append(value("hephaestus_consecutive_failures"))
        time.sleep(0.5)  # so recovery measured from the second failure would be too short

        llm_server._default = answer_by_task(next_objective=json.dumps({"objective": None}))
        rejected = runner.run_cycle()
        gauge.append(value("hephaestus_consecutive_failures"))

        llm_server._default = answer_by_task(
            next_objective=objective("Rewrite pricing B"), patch_plan=failing
        )
        second = runner.run_cycle()
        gauge.append(value("hephaestus_consecutive_failures"))
        count_during = value("hephaestus_recovery_seconds_count")

        llm_server._default = answer_by_task()
        success = runner.run_cycle()
        success_returned = time.time()
        gauge.append(value("hephaestus_consecutive_failures"))
    finally:
        runner.close()

    assert [r.reason for r in (start, first, rejected, second, success)] == [
        Reason.COMMITTED,
        Reason.INVALID_PLAN,
        Reason.NO_OBJECTIVE,
        Reason.INVALID_PLAN,
        Reason.COMMITTED,
    ]
    assert gauge == [0, 1, 1, 2, 0]  # a rejected cycle neither extends nor ends a streak
    assert count_during == count_before  # failures alone observe no recovery
    assert value("hephaestus_recovery_seconds_count") - count_before == 1
    recovery = value("hephaestus_recovery_seconds_sum") - sum_before
    # from the start of the streak's first failed cycle to the end of the success
    assert recovery == pytest.approx(success.finished_at - first.started_at, abs=1e-3)
    assert first_returned - first.started_at < recovery <= success_returned - first.started_at


def test_validation_runs_are_counted_by_pytest_result(llm_server, sample_repo):
    breaking = json.dumps(
        {
            "analysis": "scripted",
            "patches_to_apply": [
                {
                    "file_path": PRICING,
                    "operation": "REPLACE",
                    "block_to_replace": "def apply_discount(",
                    "content": "def _unused(): pass\n\n\ndef apply_discount_(",
                }
            ],
        }
    )
    # the maestro's SYNTAX_ONLY is taken as it is (not upgraded to run the tests)
    config = openai_config(llm_server, validation={"require_tests": False})
    runner = make_agent(config, sample_repo)
    deltas = []
    try:
        for answers in (
            {
                "next_objective": objective("Break pricing"),
                "patch_plan": breaking,
                "strategy": json.dumps({"strategy": "SYNTAX_AND_PYTEST"}),
            },
            {"strategy": json.dumps({"strategy": "SYNTAX_AND_PYTEST"})},
            {"strategy": json.dumps({"strategy": "SYNTAX_ONLY"})},
        ):
            llm_server._default = answer_by_task(**answers)
            before = {
                r: value("hephaestus_validation_tests_total", result=r)
                for r in ("passed", "failed")
            }
            result = runner.run_cycle()
            deltas.append(
                (
                    result.reason,
                    result.strategy,
                    {
                        r: value("hephaestus_validation_tests_total", result=r) - before[r]
                        for r in before
                    },
                )
            )
    finally:
        runner.close()

    assert deltas == [
        (Reason.TESTS_FAILED, "SYNTAX_AND_PYTEST", {"passed": 0, "failed": 1}),
        (Reason.COMMITTED, "SYNTAX_AND_PYTEST", {"passed": 1, "failed": 0}),
        (Reason.COMMITTED, "SYNTAX_ONLY", {"passed": 0, "failed": 0}),
    ]


def test_token_usage_observes_the_input_and_output_tokens_of_each_call(llm_server, sample_repo):
    llm_server._default = answer_by_task(next_objective=json.dumps({"objective": None}))
    runner = make_agent(openai_config(llm_server), sample_repo)
    labels = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "model-a",
    }
    names = [f"gen_ai_client_token_usage_{s}" for s in ("count", "sum")]
    before = {
        (n, t): value(n, **labels, gen_ai_token_type=t) for n in names for t in ("input", "output")
    }
    calls_before = value("gen_ai_client_operation_duration_seconds_count", **labels, error_type="")
    try:
        result = runner.run_cycle()
    finally:
        runner.close()

    assert (result.reason, result.llm_calls) == (Reason.NO_OBJECTIVE, 1)
    delta = {
        key: value(key[0], **labels, gen_ai_token_type=key[1]) - was for key, was in before.items()
    }
    assert delta == {
        ("gen_ai_client_token_usage_count", "input"): 1,
        ("gen_ai_client_token_usage_count", "output"): 1,
        ("gen_ai_client_token_usage_sum", "input"): 11,  # the scripted usage.prompt_tokens
        ("gen_ai_client_token_usage_sum", "output"): 7,  # and usage.completion_tokens
    }
    assert (
        value("gen_ai_client_operation_duration_seconds_count", **labels, error_type="")
        - calls_before
        == 1
    )


def test_model_labels_are_configured_request_models_never_response_models(llm_server, sample_repo):
    models = {
        "brain": ["acme/brain-large"],
        "architect": ["acme/architect-large"],
        "code_reviewer": ["acme/reviewer-small"],
        "maestro": ["acme/maestro-small"],
    }
    configured = {m for chain in models.values() for m in chain}

    def dated_response(request: dict[str, Any]) -> Reply:
        reply = model_like_reply(request)
        reply.body["model"] = request["model"] + "-2024-08-06"  # what real APIs answer
        return reply

    llm_server._default = dated_response
    runner = make_agent(openai_config(llm_server, models=models), sample_repo)
    before = all_samples()
    try:
        result = runner.run_cycle()
    finally:
        runner.close()
    after = all_samples()

    assert result.outcome is Outcome.SUCCEEDED
    changed = {key for key, was in after.items() if before.get(key) != was}
    used = {dict(labels).get("gen_ai_request_model") for _name, labels in changed} - {None}
    assert used == configured
    exposition = "\n".join(f"{name}{dict(labels)}" for name, labels in after)
    assert "-2024-08-06" not in exposition


def test_a_stamina_retry_is_counted_on_the_registry_metrics_serves():
    attempts = []

    @stamina.retry(on=ConnectionError, attempts=3, wait_initial=0, wait_max=0, wait_jitter=0)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("transient")
        return "ok"

    def retries() -> dict[str, float]:
        return {
            s.labels["retry_num"]: s.value
            for f in REGISTRY.collect()
            if f.name == "stamina_retries"
            for s in f.samples
            # this flaky alone: another test's `flaky` may share the registry
            if s.name == "stamina_retries_total"
            and s.labels["callable"].endswith(flaky.__qualname__)
        }

    before = retries()
    assert flaky() == "ok"
    after = retries()

    assert default_metrics().retries is stamina.instrumentation.get_prometheus_counter()
    assert {n: after[n] - before.get(n, 0) for n in after} == {"1": 1, "2": 1}


def test_a_failure_streak_survives_a_restart_so_recovery_spans_it(llm_server, sample_repo):
    failing = answer_by_task(next_objective=objective("Rewrite pricing C"), patch_plan="no plan")
    runner = make_agent(openai_config(llm_server), sample_repo)
    try:
        llm_server._default = answer_by_task()
        runner.run_cycle()  # a success first: no streak is left over from earlier tests
        llm_server._default = failing
        failed = runner.run_cycle()
    finally:
        runner.close()
    count_before = value("hephaestus_recovery_seconds_count")
    sum_before = value("hephaestus_recovery_seconds_sum")

    runner = make_agent(openai_config(llm_server), sample_repo)  # a restart: new process state
    try:
        resumed = value("hephaestus_consecutive_failures")
        llm_server._default = answer_by_task()
        success = runner.run_cycle()
    finally:
        runner.close()

    assert failed.reason is Reason.INVALID_PLAN
    assert resumed == 1  # the streak read back from memory
    assert value("hephaestus_recovery_seconds_count") - count_before == 1
    recovery = value("hephaestus_recovery_seconds_sum") - sum_before
    assert recovery == pytest.approx(success.finished_at - failed.started_at, abs=1e-3)
