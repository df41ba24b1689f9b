"""The plugin the agent loads into the validation subprocess, and the trace join it registers.

``hephaestus.agent.pytest_report`` tells the agent how many tests were collected and, when
the agent names a span file, registers ``hephaestus.telemetry.pytest_plugin``, which joins
the agent's trace and writes the session's spans to the file the agent relays them from.
In the real run they live in a sandboxed subprocess; here pytester runs them in this
process (or a subprocess of its own where imports are the point), on a real little suite.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hephaestus.agent.pytest_report import REPORT_ENV, read_report
from hephaestus.telemetry.conventions import SPAN_FILE_ENV, TEST_SPANS_ENV
from hephaestus.telemetry.spanfile import read_span_file

CORRELATION = "hephaestus.correlation_id"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SUITE = """
import pytest

def test_passes():
    pass

def test_fails():
    assert False

@pytest.mark.skip(reason="later")
def test_skipped():
    pass
"""


def test_the_report_plugin_writes_the_collected_count(pytester, monkeypatch, tmp_path):
    report = tmp_path / "run.json"
    monkeypatch.setenv(REPORT_ENV, str(report))
    pytester.makepyfile(test_suite=SUITE)

    pytester.runpytest_inprocess("-p", "hephaestus.agent.pytest_report", "-k", "not fails")

    assert json.loads(report.read_text()) == {"collected": 2}  # after deselection
    assert read_report(report) == 2


def test_the_report_plugin_without_its_variable_writes_nothing(pytester, monkeypatch, tmp_path):
    monkeypatch.delenv(REPORT_ENV, raising=False)
    pytester.makepyfile(test_suite=SUITE)

    result = pytester.runpytest_inprocess("-p", "hephaestus.agent.pytest_report")

    result.assert_outcomes(passed=1, failed=1, skipped=1)
    assert list(tmp_path.glob("*.json")) == []


def test_the_telemetry_plugin_asked_for_all_tests_writes_one_span_per_test(
    pytester, monkeypatch, tmp_path
):
    span_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPAN_FILE_ENV, str(span_file))
    monkeypatch.setenv(TEST_SPANS_ENV, "all")
    monkeypatch.setenv("TRACEPARENT", f"00-{TRACE_ID}-{PARENT_ID}-01")
    monkeypatch.setenv("BAGGAGE", "hephaestus.correlation_id=corr-plugin")
    pytester.makepyfile(test_suite=SUITE)

    result = pytester.runpytest_inprocess("-p", "hephaestus.telemetry.pytest_plugin")

    result.assert_outcomes(passed=1, failed=1, skipped=1)
    spans = list(read_span_file(span_file))
    (session,) = [s for s in spans if s["name"] == "pytest session"]
    tests = [s for s in spans if s["name"] == "pytest test"]
    assert (session["trace_id"], session["parent_span_id"]) == (TRACE_ID, PARENT_ID)
    assert session["attributes"]["hephaestus.correlation_id"] == "corr-plugin"
    assert session["attributes"]["process.exit.code"] == 1
    assert session["attributes"]["hephaestus.tests.passed"] == 1
    assert session["attributes"]["hephaestus.tests.failed"] == 1
    assert sorted(t["attributes"]["test.case.result.status"] for t in tests) == ["fail", "pass"]
    assert {t["parent_span_id"] for t in tests} == {session["span_id"]}


def test_the_report_plugin_registers_the_trace_join_when_the_agent_names_a_span_file(
    pytester, monkeypatch, tmp_path
):
    span_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPAN_FILE_ENV, str(span_file))
    monkeypatch.setenv("TRACEPARENT", f"00-{TRACE_ID}-{PARENT_ID}-01")
    pytester.makepyfile(test_suite=SUITE)

    result = pytester.runpytest_inprocess("-p", "hephaestus.agent.pytest_report")

    result.assert_outcomes(passed=1, failed=1, skipped=1)
    names = sorted(s["name"] for s in read_span_file(span_file))
    assert names == ["pytest session", "pytest test"]  # the failed test's


def test_the_trace_join_registers_once_when_both_plugins_are_named(pytester, monkeypatch, tmp_path):
    span_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPAN_FILE_ENV, str(span_file))
    monkeypatch.setenv("TRACEPARENT", f"00-{TRACE_ID}-{PARENT_ID}-01")
    pytester.makepyfile(test_suite=SUITE)

    result = pytester.runpytest_inprocess(
        "-p", "hephaestus.agent.pytest_report", "-p", "hephaestus.telemetry.pytest_plugin"
    )

    result.assert_outcomes(passed=1, failed=1, skipped=1)
    sessions = [s for s in read_span_file(span_file) if s["name"] == "pytest session"]
    assert len(sessions) == 1


@pytest.mark.parametrize("telemetry", [False, True])
def test_the_trace_join_is_imported_only_when_the_agent_names_a_span_file(
    pytester, monkeypatch, tmp_path, telemetry
):
    if telemetry:
        monkeypatch.setenv(SPAN_FILE_ENV, str(tmp_path / "spans.jsonl"))
        monkeypatch.setenv("TRACEPARENT", f"00-{TRACE_ID}-{PARENT_ID}-01")
    else:
        monkeypatch.delenv(SPAN_FILE_ENV, raising=False)
    pytester.makepyfile(
        test_imports=f"""
import sys

def test_the_trace_join_is_loaded_as_asked():
    assert ("hephaestus.telemetry.pytest_plugin" in sys.modules) is {telemetry}
"""
    )

    result = pytester.runpytest_subprocess("-p", "hephaestus.agent.pytest_report")

    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("asked", [None, "failed", "anything else"])
def test_the_telemetry_plugin_by_default_traces_the_failed_tests_and_counts_the_rest(
    pytester, monkeypatch, tmp_path, asked
):
    span_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPAN_FILE_ENV, str(span_file))
    monkeypatch.setenv("TRACEPARENT", f"00-{TRACE_ID}-{PARENT_ID}-01")
    if asked is None:
        monkeypatch.delenv(TEST_SPANS_ENV, raising=False)
    else:
        monkeypatch.setenv(TEST_SPANS_ENV, asked)
    pytester.makepyfile(test_suite=SUITE)

    pytester.runpytest_inprocess("-p", "hephaestus.telemetry.pytest_plugin")

    spans = list(read_span_file(span_file))
    (session,) = [s for s in spans if s["name"] == "pytest session"]
    (test,) = [s for s in spans if s["name"] == "pytest test"]
    assert test["attributes"]["test.case.name"] == "test_suite.py::test_fails"
    assert test["attributes"]["test.case.result.status"] == "fail"
    assert test["parent_span_id"] == session["span_id"]
    assert session["attributes"]["hephaestus.tests.passed"] == 1
    assert session["attributes"]["hephaestus.tests.failed"] == 1


def test_the_telemetry_plugin_without_a_trace_context_records_nothing(
    pytester, monkeypatch, tmp_path
):
    span_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPAN_FILE_ENV, str(span_file))
    monkeypatch.delenv("TRACEPARENT", raising=False)
    pytester.makepyfile(test_suite=SUITE)

    pytester.runpytest_inprocess("-p", "hephaestus.telemetry.pytest_plugin")

    assert not span_file.exists()


def test_the_telemetry_plugin_writes_its_spans_once_at_session_end(pytester, monkeypatch, tmp_path):
    span_file = tmp_path / "spans.jsonl"
    span_file.touch()  # the agent creates it
    monkeypatch.setenv(SPAN_FILE_ENV, str(span_file))
    monkeypatch.setenv(TEST_SPANS_ENV, "all")
    monkeypatch.setenv("TRACEPARENT", f"00-{TRACE_ID}-{PARENT_ID}-01")
    pytester.makepyfile(
        test_order=f"""
import pathlib

def test_first():
    pass

def test_second_sees_nothing_written_yet():
    assert pathlib.Path({str(span_file)!r}).stat().st_size == 0
"""
    )

    result = pytester.runpytest_inprocess("-p", "hephaestus.telemetry.pytest_plugin")

    result.assert_outcomes(passed=2)
    names = [s["name"] for s in read_span_file(span_file)]
    assert names == ["pytest test", "pytest test", "pytest session"]


def test_the_telemetry_plugin_reads_baggage_properties_and_escapes(pytester, monkeypatch, tmp_path):
    span_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPAN_FILE_ENV, str(span_file))
    monkeypatch.setenv("TRACEPARENT", f"00-{TRACE_ID}-{PARENT_ID}-01")
    monkeypatch.setenv("BAGGAGE", "other=1, hephaestus.correlation_id = a%20b;prop=x")
    pytester.makepyfile(test_suite=SUITE)

    pytester.runpytest_inprocess("-p", "hephaestus.telemetry.pytest_plugin")

    correlation_ids = {s["attributes"][CORRELATION] for s in read_span_file(span_file)}
    assert correlation_ids == {"a b"}


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{TRACE_ID}-{PARENT_ID}-00",  # not sampled: the agent's span is not recorded
        f"00-{'0' * 32}-{PARENT_ID}-01",
        f"ff-{TRACE_ID}-{PARENT_ID}-01",
        "garbage",
    ],
)
def test_the_telemetry_plugin_records_nothing_under_an_unsampled_or_invalid_parent(
    pytester, monkeypatch, tmp_path, traceparent
):
    span_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPAN_FILE_ENV, str(span_file))
    monkeypatch.setenv("TRACEPARENT", traceparent)
    pytester.makepyfile(test_suite=SUITE)

    pytester.runpytest_inprocess("-p", "hephaestus.telemetry.pytest_plugin")

    assert not span_file.exists()


def test_loading_the_plugins_imports_neither_opentelemetry_nor_prometheus_client():
    # the validation subprocess loads both plugins into every pytest run
    probe = (
        "import sys, pytest\n"
        "import hephaestus.telemetry.pytest_plugin, hephaestus.agent.pytest_report\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout

    assert "opentelemetry" not in loaded
    assert "prometheus_client" not in loaded
    assert "hephaestus" in loaded
