"""What the terminal shows: cycle lines, tables, the config as TOML, a trace as a tree.

Everything is rendered by rich into a recording console and read back as plain text, the
way an operator reads it.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from hephaestus.agent.models import CycleResult, Objective, Reason, Stage
from hephaestus.display import (
    CycleProgress,
    history_table,
    report_view,
    status_view,
    summary_table,
    trace_tree,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"


def text(renderable: Any, width: int = 200) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def result(number: int, reason: Reason, **fields: Any) -> CycleResult:
    cycle = CycleResult(f"corr-{number}", cycle_number=number, started_at=100.0, **fields)
    cycle.end(reason)
    return cycle


# -- cycles -----------------------------------------------------------------------------------
def test_summary_has_one_row_per_cycle_with_a_short_commit_and_the_objective():
    done = result(
        1,
        Reason.COMMITTED,
        commit_sha="0123456789abcdef",
        objective=Objective(text="Add a docstring to pricing"),
        finished_at=102.5,
    )
    rejected = result(2, Reason.REVIEW_REJECTED, finished_at=100.25)

    lines = text(summary_table([done, rejected])).splitlines()

    row1 = next(line for line in lines if line.strip().startswith("│ 1"))
    row2 = next(line for line in lines if line.strip().startswith("│ 2"))
    assert "succeeded" in row1 and "2.50s" in row1 and "0123456789 " in row1
    assert "Add a docstring to pricing" in row1
    assert "rejected" in row2 and "review_rejected" in row2 and "0.25s" in row2
    assert row2.count(" - ") >= 2  # no commit, no objective


def test_a_finished_cycle_prints_one_line_even_without_a_terminal():
    console = Console(record=True, width=120, color_system=None, force_terminal=False)
    failed = result(7, Reason.TESTS_FAILED, finished_at=101.0)

    with CycleProgress(console, total=3) as progress:
        progress.on_stage(failed, Stage.VALIDATE)
        progress.cycle_done(failed)

    assert console.export_text().strip() == "cycle 7: failed (tests_failed) in 1.00s"


def test_history_shows_a_running_cycle_and_the_ids_that_find_its_trace():
    rows = [
        {"cycle_number": 4, "started_at": 0, "correlation_id": "corr-4"},
        {
            "cycle_number": 3,
            "started_at": 1000.0,
            "finished_at": 1003.0,
            "outcome": "failed",
            "reason": "timeout",
            "correlation_id": "corr-3",
            "trace_id": TRACE,
            "objective": "Speed up stock",
        },
    ]

    shown = text(history_table(rows), width=300)

    running = next(line for line in shown.splitlines() if "corr-4" in line)
    assert "running" in running
    finished = next(line for line in shown.splitlines() if "corr-3" in line)
    assert TRACE in finished and "timeout" in finished and "3.00s" in finished


# -- traces -----------------------------------------------------------------------------------
def span(name: str, span_id: str, parent: str | None, start: int, **attributes: Any) -> dict:
    status = attributes.pop("status", "OK")
    return {
        "name": name,
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_span_id": parent,
        "start_ns": start,
        "end_ns": start + 2_500_000,
        "status": status,
        "attributes": attributes,
    }


def test_a_trace_is_a_tree_in_start_order_with_key_attributes_and_errors():
    spans = [
        span("hephaestus.validate", "v", "r", 30, **{"hephaestus.outcome": "failed"}),
        span(
            "invoke_workflow hephaestus.cycle", "r", None, 0, **{"hephaestus.correlation_id": "c1"}
        ),
        span("chat m", "c", "r", 10, status="ERROR", **{"error.type": "timeout"}),
    ]

    lines = text(trace_tree(spans)).splitlines()

    assert lines[0] == f"trace {TRACE}  correlation_id=c1"
    names = [line.strip("└├─│ ").split("  ")[0] for line in lines[1:]]
    assert names == ["invoke_workflow hephaestus.cycle", "chat m", "hephaestus.validate"]
    assert "ERROR" in lines[2] and "error.type=timeout" in lines[2] and "2.5 ms" in lines[2]
    assert "outcome=failed" in lines[3]  # hephaestus.* attributes by their short name


def test_a_span_whose_parent_is_missing_is_shown_as_a_root():
    spans = [span("orphan", "o", "gone", 5), span("root", "r", None, 0)]

    shown = text(trace_tree(spans))

    assert "orphan" in shown and "root" in shown


def test_many_passing_tests_collapse_to_a_count_and_failures_stay_visible():
    tests = [
        span(f"pytest test {i}", f"t{i}", "s", i, **{"test.case.result.status": "pass"})
        for i in range(7)
    ]
    for t in tests:
        t["name"] = "pytest test"
    tests[3]["attributes"]["test.case.result.status"] = "fail"
    tests[3]["status"] = "ERROR"
    spans = [span("pytest session", "s", None, 0), *tests]

    shown = text(trace_tree(spans))

    assert "… 6 passing tests" in shown
    assert shown.count("pytest test") == 1 and "ERROR" in shown


# -- status and report ------------------------------------------------------------------------
KPI = {
    "key": "success_rate",
    "title": "Success rate",
    "value": 0.5,
    "target": 0.9,
    "unit": "ratio",
    "better": "higher",
    "state": "breach",
    "basis": "last 24 h",
}


def test_status_names_open_breakers_breaches_and_the_last_failures():
    status = {
        "url": "http://127.0.0.1:8080",
        "healthy": False,
        "status": "degraded",
        "ready": True,
        "version": "0.1.0",
        "uptime_seconds": 61.9,
        "cycles_run": 12,
        "queue_depth": 2,
        "kpis": [KPI],
        "open_breakers": ["openai/m"],
        "breaches": ["success rate 50.0 % is below 90.0 %"],
        "last_failures": [
            {"cycle_number": 9, "reason": "llm_error", "correlation_id": "c9", "objective": None}
        ],
    }

    shown = text(status_view(status))

    assert "http://127.0.0.1:8080: breach · status degraded · ready" in shown
    assert "up 61 s · 12 cycles run · queue 2" in shown
    assert "open breakers: openai/m" in shown
    assert "✗ success rate 50.0 % is below 90.0 %" in shown
    failures = next(line for line in shown.splitlines() if "c9" in line)
    assert "llm_error" in failures and "9" in failures
    assert "50.0 %" in shown and "≥ 90.0 %" in shown and "breach" in shown


def test_a_report_without_data_says_so_instead_of_scoring():
    analysis = {
        "overall_performance": {
            "score": None,
            "detail": "no cycles in the window",
            "kpis": [],
            "source": "memory",
        },
        "bottlenecks": [],
        "recommendations": [],
        "measurements": {},
    }

    shown = text(report_view(analysis))

    assert "not enough data: no cycles in the window" in shown
    assert "score" not in shown and "source: memory" in shown


def test_a_report_shows_the_score_bottlenecks_and_recommendations():
    analysis = {
        "overall_performance": {
            "score": 72.25,
            "kpis_met": 3,
            "kpis_measured": 4,
            "cycles": 40,
            "kpis": [KPI],
            "source": "prometheus",
        },
        "bottlenecks": [
            {"kind": "stage", "name": "plan", "share": 0.61, "p95_s": 7.5, "over_budget": True}
        ],
        "recommendations": [{"message": "use a faster architect model"}],
        "measurements": {"notes": ["uptime from up{}"]},
    }

    shown = text(report_view(analysis))

    assert "score 72.2/100 · 3 of 4 measured KPIs on target · 40 cycles" in shown
    plan = next(line for line in shown.splitlines() if " plan " in line)
    assert "61 %" in plan and "7.50 s" in plan and "over 5 s" in plan
    assert "• use a faster architect model" in shown
    assert "note: uptime from up{}" in shown
