"""Spans on the wire: real cycles export OTLP/HTTP protobuf to a real receiver on a real socket.

The receiver decodes each ``ExportTraceServiceRequest`` with opentelemetry-proto. A cycle must
arrive as one whole trace, the pytest subprocess's spans included; the standard ``OTEL_*``
variables must work; and a dead, silent or failing collector must never hurt the agent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from factories import (
    assert_succeeded,
    eventually,
    make_agent,
    make_config,
    make_target_repo,
    run_cycles,
)
from otlp_receiver import OTLPReceiver, closed_port_url, export_failures

from hephaestus import __version__

pytestmark = pytest.mark.slow

ROOT = "invoke_workflow hephaestus.cycle"
CORRELATION = "hephaestus.correlation_id"


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as server:
        yield server


def of_process(spans: list[dict[str, Any]], pytest_side: bool) -> list[dict[str, Any]]:
    return [
        s for s in spans if (s["resource"].get("hephaestus.process") == "pytest") is pytest_side
    ]


# -- the happy path ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given_by",
    [
        "telemetry.otlp_endpoint",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ],
)
def test_each_cycle_arrives_as_one_whole_trace(receiver, sample_repo, given_by):
    if given_by == "telemetry.otlp_endpoint":
        env, endpoint = {}, receiver.endpoint
    elif given_by == "OTEL_EXPORTER_OTLP_ENDPOINT":  # the standard variable wins over config
        env, endpoint = {given_by: receiver.endpoint}, closed_port_url()
    else:  # the signal-specific variable is the full URL, used as given
        env, endpoint = {given_by: receiver.traces_url}, ""
    results, _, _ = run_cycles(
        sample_repo, 2, env=env, otlp_endpoint=endpoint, local_traces=False, test_spans="all"
    )
    assert_succeeded(results)

    assert receiver.wait_for(
        lambda spans: sum(s["name"] == "pytest session" for s in spans) == 2, timeout=60
    )
    spans = receiver.snapshot()
    assert {r.path for r in receiver.requests} == {"/v1/traces"}
    assert receiver.trace_ids() == {r.trace_id for r in results}
    for result in results:
        trace = [s for s in spans if s["trace_id"] == result.trace_id]
        ids = {s["span_id"] for s in trace}
        assert len(ids) == len(trace)
        assert [s["name"] for s in trace if s["parent_span_id"] is None] == [ROOT]
        orphans = [
            s["name"]
            for s in trace
            if s["parent_span_id"] is not None and s["parent_span_id"] not in ids
        ]
        assert orphans == []
        assert {s["attributes"].get(CORRELATION) for s in trace} == {result.correlation_id}
        [tool] = [s for s in trace if s["name"] == "execute_tool pytest"]
        [session] = of_process([s for s in trace if s["name"] == "pytest session"], True)
        assert session["parent_span_id"] == tool["span_id"]
        tests = [s for s in trace if s["name"] == "pytest test"]
        assert tests and {t["parent_span_id"] for t in tests} == {session["span_id"]}


def test_spans_carry_the_service_resource(receiver, sample_repo):
    results, _, _ = run_cycles(
        sample_repo, 1, env={}, otlp_endpoint=receiver.endpoint, environment="wire-test"
    )
    assert_succeeded(results)
    spans = receiver.snapshot()

    agent_side = of_process(spans, pytest_side=False)
    assert agent_side
    resources = {tuple(sorted(s["resource"].items())) for s in agent_side}
    assert len(resources) == 1  # one process, one resource
    resource = agent_side[0]["resource"]
    assert resource["service.name"] == "hephaestus"
    assert resource["service.version"] == __version__
    assert resource["service.instance.id"]
    assert resource["deployment.environment.name"] == "wire-test"
    assert {s["resource"]["service.name"] for s in of_process(spans, pytest_side=True)} == {
        "hephaestus"
    }


# -- the standard OTEL_* variables ------------------------------------------------------------
def test_otel_service_name_renames_the_service(receiver, sample_repo, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "hephaestus-canary")
    results, _, _ = run_cycles(sample_repo, 1, otlp_endpoint=receiver.endpoint)
    assert_succeeded(results)

    spans = receiver.snapshot()
    assert of_process(spans, pytest_side=True), "the pytest subprocess exported nothing"
    assert {s["resource"]["service.name"] for s in spans} == {"hephaestus-canary"}


def test_gzip_compression_from_the_environment_is_honoured(receiver, sample_repo, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    results, _, _ = run_cycles(sample_repo, 1, otlp_endpoint=receiver.endpoint)
    assert_succeeded(results)

    assert receiver.trace_ids() == {results[0].trace_id}
    assert {r.headers.get("Content-Encoding") for r in receiver.requests} == {"gzip"}
    assert {r.status for r in receiver.requests} == {200}


@pytest.mark.parametrize(
    ("variable", "value"), [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_SAMPLER", "always_off")]
)
def test_tracing_switched_off_exports_nothing_and_cycles_still_succeed(
    receiver, sample_repo, monkeypatch, variable, value
):
    monkeypatch.setenv(variable, value)
    results, _, _ = run_cycles(sample_repo, 2, otlp_endpoint=receiver.endpoint)

    assert_succeeded(results)
    assert receiver.requests == []
    span_file = sample_repo / ".hephaestus" / "traces.jsonl"
    assert not span_file.exists() or span_file.stat().st_size == 0


# -- a collector that does not help -----------------------------------------------------------
def test_a_dead_endpoint_costs_the_cycles_nothing_and_is_counted(sample_repo, tmp_path):
    # the baseline: the same cycle here, now, with no collector at all
    (baseline,), _, _ = run_cycles(make_target_repo(tmp_path / "base", sample=True), 1, env={})
    export_timeout = 20 * baseline.duration  # an exporter that held a cycle up would show
    before = export_failures()

    results, _, closing = run_cycles(
        sample_repo,
        2,
        env={},
        otlp_endpoint=closed_port_url(),
        export_timeout=export_timeout,
        shutdown_timeout=2.0,
    )

    assert_succeeded(results)
    assert all(r.duration < 10 * baseline.duration for r in results), (
        baseline.duration,
        [r.duration for r in results],
    )
    assert closing < export_timeout / 2  # shutdown did not wait for the export to give up
    assert eventually(lambda: export_failures() > before, timeout=export_timeout + 10)


def test_a_collector_that_never_answers_neither_slows_cycles_nor_blocks_shutdown(sample_repo):
    export_timeout = 120.0  # the exporter stays blocked on the first export for this long
    with OTLPReceiver(mode="blackhole") as blackhole:
        runner = make_agent(
            make_config(
                telemetry={
                    "otlp_endpoint": blackhole.endpoint,
                    "export_timeout": export_timeout,
                    "shutdown_timeout": 2.0,
                    "schedule_delay": 0.05,
                }
            ),
            sample_repo,
            env={},
        )
        try:
            results = [runner.run_cycle() for _ in range(2)]
            # the events, in order: an export went out, then both cycles finished while
            # it was still unanswered and the exporter still waiting on it
            held_during_cycles = held(blackhole)
        finally:
            started = time.monotonic()
            runner.close()
            closing = time.monotonic() - started
        held_after_close = [r for r in held_during_cycles if not r.abandoned.is_set()]

    assert_succeeded(results)
    assert held_during_cycles, "no export was in flight while the cycles ran"
    assert closing < export_timeout / 2, closing  # shutdown did not wait for the export...
    assert held_after_close  # ...which it left in flight, bounded by its own deadline


def held(receiver: OTLPReceiver) -> list[Any]:
    """Requests the receiver holds: sent, unanswered, the client still waiting."""
    return [r for r in receiver.requests if r.status is None and not r.abandoned.is_set()]


@pytest.mark.parametrize("collector", ["dead", "blackhole", "unavailable"])
def test_shutdown_does_not_wait_again_on_a_collector_that_failed(sample_repo, collector):
    # before: close() waited out the whole shutdown_timeout on a collector that had already
    # failed (or never answered); now it gives such a collector no more time
    shutdown_timeout = 5.0
    with OTLPReceiver(mode="unavailable" if collector == "unavailable" else "blackhole") as peer:
        endpoint = closed_port_url() if collector == "dead" else peer.endpoint
        before = export_failures()
        results, _, closing = run_cycles(
            sample_repo,
            1,
            env={},
            otlp_endpoint=endpoint,
            export_timeout=60.0,  # the exporter would retry for this long
            shutdown_timeout=shutdown_timeout,
            schedule_delay=0.05,
        )

    assert_succeeded(results)
    assert closing < shutdown_timeout / 2, closing
    if collector != "blackhole":  # a blackholed export is still waiting on its answer
        assert eventually(lambda: export_failures() > before, timeout=30)
    # the local span file is flushed whatever the collector does
    span_file = sample_repo / ".hephaestus" / "traces.jsonl"
    assert ROOT in span_file.read_text(encoding="utf-8")


def test_a_collector_answering_503_is_counted_and_cycles_go_on(sample_repo):
    before = export_failures()
    with OTLPReceiver(mode="unavailable") as unavailable:
        results, _, _ = run_cycles(
            sample_repo, 1, env={}, otlp_endpoint=unavailable.endpoint, export_timeout=1.0
        )
        answered = {r.status for r in unavailable.requests}

    assert_succeeded(results)
    assert answered == {503}
    assert unavailable.spans == []
    assert export_failures() > before
