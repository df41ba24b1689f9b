"""Spans over OTLP/gRPC: real cycles export to a real gRPC ``TraceService`` on a real socket.

``telemetry.otlp_protocol = "grpc"`` or the standard ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=grpc``
switches the exporter to gRPC. A cycle must then arrive as one whole trace, the spans the
pytest subprocess recorded and the agent relayed included; and a collector that answers
``UNAVAILABLE`` (or is not there) must cost the cycles nothing and be counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from factories import (
    assert_succeeded,
    eventually,
    make_target_repo,
    run_cycles,
)
from otlp_grpc_receiver import OTLPGrpcReceiver
from otlp_receiver import closed_port_url, export_failures

pytestmark = pytest.mark.slow

ROOT = "invoke_workflow hephaestus.cycle"
CORRELATION = "hephaestus.correlation_id"


@pytest.fixture
def receiver() -> Iterator[OTLPGrpcReceiver]:
    with OTLPGrpcReceiver() as server:
        yield server


def relayed(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spans the pytest subprocess recorded and the agent relayed."""
    return [s for s in spans if s["resource"].get("hephaestus.process") == "pytest"]


# -- the happy path ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given_by",
    [
        "telemetry.otlp_protocol",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    ],
)
def test_each_cycle_arrives_over_grpc_as_one_whole_trace(receiver, sample_repo, given_by):
    if given_by == "telemetry.otlp_protocol":
        env: dict[str, str] = {}
        telemetry = {"otlp_protocol": "grpc", "otlp_endpoint": receiver.endpoint}
    elif given_by == "OTEL_EXPORTER_OTLP_PROTOCOL":  # the standard variables win over config
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, given_by: "grpc"}
        telemetry = {"otlp_protocol": "http/protobuf", "otlp_endpoint": closed_port_url()}
    else:  # the signal-specific pair; a gRPC endpoint gets no /v1/traces either way
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint, given_by: "grpc"}
        telemetry = {"otlp_protocol": "http/protobuf", "otlp_endpoint": ""}
    results, exporters, _ = run_cycles(
        sample_repo, 2, env=env, local_traces=False, test_spans="all", **telemetry
    )
    assert_succeeded(results)
    assert exporters == ["otlp/grpc"]

    assert receiver.wait_for(
        lambda spans: len(relayed([s for s in spans if s["name"] == "pytest session"])) == 2,
        timeout=60,
    )
    spans = receiver.snapshot()
    assert set(receiver.answered()) == {grpc.StatusCode.OK}
    assert len(receiver.trace_ids()) == 2
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
        [session] = relayed([s for s in trace if s["name"] == "pytest session"])
        assert session["parent_span_id"] == tool["span_id"]
        tests = [s for s in trace if s["name"] == "pytest test"]
        assert tests and {t["parent_span_id"] for t in tests} == {session["span_id"]}


def test_without_grpc_asked_for_the_exporter_speaks_otlp_http_not_grpc(receiver, sample_repo):
    results, exporters, _ = run_cycles(
        sample_repo, 1, env={}, otlp_endpoint=receiver.endpoint, export_timeout=1.0
    )

    assert_succeeded(results)
    assert exporters[0] == "otlp/http/protobuf"  # OTLP/HTTP protobuf is the default
    assert receiver.calls == []


# -- a collector that does not help -----------------------------------------------------------
@pytest.mark.parametrize("collector", ["answers UNAVAILABLE", "is not listening"])
def test_a_grpc_collector_that_cannot_take_spans_costs_the_cycles_nothing_and_is_counted(
    sample_repo, tmp_path, collector
):
    # the baseline: the same cycle here, now, with no collector at all
    (baseline,), _, _ = run_cycles(make_target_repo(tmp_path / "base", sample=True), 1, env={})
    export_timeout = 20 * baseline.duration  # an exporter that held a cycle up would show
    before = export_failures()
    with OTLPGrpcReceiver(mode="unavailable") as unavailable:
        endpoint = unavailable.endpoint if collector == "answers UNAVAILABLE" else closed_port_url()
        results, _, closing = run_cycles(
            sample_repo,
            2,
            env={},
            otlp_protocol="grpc",
            otlp_endpoint=endpoint,
            export_timeout=export_timeout,
            shutdown_timeout=2.0,
        )
        counted = eventually(lambda: export_failures() > before, timeout=export_timeout + 10)
        answered = unavailable.answered()

    assert_succeeded(results)
    # exports run in the background: no cycle waits for the collector
    assert all(r.duration < 10 * baseline.duration for r in results), (
        baseline.duration,
        [r.duration for r in results],
    )
    assert closing < export_timeout / 2  # shutdown did not wait for the export to give up
    assert counted, "no failed export was counted"
    if collector == "answers UNAVAILABLE":
        assert answered and set(answered) == {grpc.StatusCode.UNAVAILABLE}
    else:
        assert answered == []
    assert unavailable.spans == []
