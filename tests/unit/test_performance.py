"""PerformanceAnalyzer from a real memory database holding known cycles.

Each test writes cycles with known outcomes, timestamps and stage durations through the
same :class:`Memory` the agent uses, then reads the analysis back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hephaestus.agent.memory import Memory
from hephaestus.agent.models import CycleResult, Reason
from hephaestus.performance import (
    Measurements,
    PerformanceAnalyzer,
    from_memory,
    memory_analyzer,
    parse_window,
)
from hephaestus.performance.analyzer import RULES, bottlenecks
from hephaestus.performance.kpis import overall_score
from hephaestus.performance.report import format_window, to_markdown

NOW = 1_800_000_000.0
DAY = 86400.0
FAST = {"scan": 0.1, "objective": 0.5, "plan": 0.5, "review": 0.2, "strategy": 0.2}


class History:
    """Writes finished cycles into a memory database."""

    def __init__(self, path: Path) -> None:
        self.memory = Memory(path)
        self.count = 0

    def add(
        self,
        reason: str = "committed",
        *,
        at: float,
        durations: dict[str, float] | None = None,
        model: str = "model-a",
        llm_calls: int = 4,
        correlation_id: str | None = None,
    ) -> None:
        self.count += 1
        stages = dict(durations or FAST)
        result = CycleResult(
            correlation_id=correlation_id or f"cycle-{self.count}",
            cycle_number=self.count,
            trace_id=f"{self.count:032x}",
            provider="offline",
            model=model,
            llm_calls=llm_calls,
            durations=stages,
            started_at=at,
            finished_at=at + sum(stages.values()),
        )
        result.end(Reason(reason))
        self.memory.start_cycle(result)
        self.memory.finish_cycle(result)

    def spread(self, reasons: list[str], over: float = DAY, **kwargs) -> None:
        """One cycle per reason, evenly over the last ``over`` seconds (oldest first)."""
        step = over / len(reasons)
        for n, reason in enumerate(reasons):
            self.add(reason, at=NOW - over + n * step + 1, **kwargs)

    def analyze(self, window: float = DAY) -> dict:
        return PerformanceAnalyzer(
            lambda: from_memory(self.memory, window, now=NOW)
        ).analyze_agent_performance()


@pytest.fixture
def history(tmp_path: Path):
    history = History(tmp_path / "memory.db")
    yield history
    history.memory.close()


def rules_fired(analysis: dict) -> set[str]:
    return {r["rule"] for r in analysis["recommendations"]}


def kpi(analysis: dict, key: str) -> dict:
    return next(k for k in analysis["overall_performance"]["kpis"] if k["key"] == key)


# -- not enough data -------------------------------------------------------------------------
def test_an_empty_history_is_not_enough_data_not_a_score(history):
    analysis = history.analyze()

    overall = analysis["overall_performance"]
    assert (overall["status"], overall["score"], overall["cycles"]) == ("not enough data", None, 0)
    assert analysis["bottlenecks"] == analysis["recommendations"] == []
    assert {k["state"] for k in overall["kpis"]} == {"no_data"}


def test_four_cycles_are_still_not_enough_five_are(history):
    history.spread(["committed"] * 4)
    assert history.analyze()["overall_performance"]["status"] == "not enough data"

    history.add(at=NOW - 10)
    assert history.analyze()["overall_performance"]["status"] == "ok"


def test_cycles_outside_the_window_are_not_counted(history):
    history.spread(["committed"] * 5, over=DAY)
    history.spread(["tests_failed"] * 5, over=3 * DAY)  # two thirds before the window

    assert history.analyze()["overall_performance"]["cycles"] == 5 + 1


# -- the score --------------------------------------------------------------------------------
def test_the_score_is_the_weighted_formula_over_measured_kpis(history):
    slow = {**FAST, "plan": 10.0}
    history.spread(["committed"] * 11 + ["tests_failed"] * 4, durations=slow)
    history.add("committed", at=NOW - 100, durations=slow)  # 12 of 16: 75 % success

    analysis = history.analyze()

    assert kpi(analysis, "success_rate")["value"] == 0.75
    assert kpi(analysis, "agent_response_p95")["value"] == 10.0
    assert kpi(analysis, "objectives_per_day")["value"] == pytest.approx(16.0, rel=0.01)
    assert kpi(analysis, "uptime")["state"] == "no_data"  # memory does not know it
    assert kpi(analysis, "internal_errors")["value"] == 0
    # success 0.75/0.9, agent 5/10, throughput 16/100, MTTR (recovered), internal errors 1
    mttr = kpi(analysis, "mttr")
    expected = (
        0.30 * (0.75 / 0.9) + 0.20 * 0.5 + 0.15 * 0.16 + 0.15 * mttr["score"] + 0.10 * 1.0
    ) / 0.90
    assert analysis["overall_performance"]["score"] == pytest.approx(100 * expected, abs=0.1)
    assert analysis["overall_performance"]["kpis_measured"] == 5


def test_a_healthy_agent_scores_100_and_gets_no_recommendations(history):
    history.spread(["committed"] * 150)

    analysis = history.analyze()

    assert analysis["overall_performance"]["score"] == 100.0
    assert analysis["recommendations"] == []
    assert {k["state"] for k in analysis["overall_performance"]["kpis"]} <= {"ok", "no_data"}


def test_a_kpi_without_data_neither_helps_nor_hurts():
    rows = [
        {"score": 1.0, "weight": 0.5},
        {"score": 0.0, "weight": 0.5},
        {"score": None, "weight": 3.0},
    ]
    assert overall_score(rows) == 50.0
    assert overall_score([{"score": None, "weight": 1.0}]) is None


# -- bottlenecks --------------------------------------------------------------------------------
def test_a_bottleneck_names_the_stage_its_share_and_its_p95_against_the_budget(history):
    history.spread(["committed"] * 10, durations={"scan": 1.0, "plan": 1.0, "validate": 8.0})

    [validate] = [b for b in history.analyze()["bottlenecks"] if b["name"] == "validate"]

    assert validate == {
        "kind": "stage",
        "name": "validate",
        "share": 0.8,
        "total_s": 80.0,
        "p95_s": 8.0,
        "budget_s": 5.0,
        "over_budget": True,
    }


def test_a_slow_model_is_a_bottleneck_even_with_a_small_share(history):
    history.spread(
        ["committed"] * 10,
        durations={"plan": 12.0, "validate": 60.0},
        model="slow-model",
        llm_calls=2,
    )

    models = [b for b in history.analyze()["bottlenecks"] if b["kind"] == "model"]

    assert models == [
        {
            "kind": "model",
            "name": "slow-model",
            "share": pytest.approx(12 / 72, abs=1e-4),
            "total_s": 120.0,
            "p95_s": 6.0,  # 12 s of model stages over 2 calls
            "budget_s": 5.0,
            "over_budget": True,
        }
    ]


# -- each recommendation rule -----------------------------------------------------------------
def test_llm_share_cites_the_share_the_p95_and_the_model(history):
    history.spread(
        ["committed"] * 10,
        durations={"scan": 0.5, "objective": 3.0, "plan": 4.0, "validate": 1.0},
        model="model-x",
        llm_calls=1,
    )

    [rule] = [r for r in history.analyze()["recommendations"] if r["rule"] == "llm_share"]

    assert rule["message"].startswith(
        "LLM calls are 82 % of cycle time, p95 7.0 s on model model-x"
    )
    assert "over the 5 s budget" in rule["message"]


def test_slow_agent_names_the_slowest_agent(history):
    history.spread(["committed"] * 10, durations={"objective": 1.0, "plan": 7.5, "validate": 30.0})

    analysis = history.analyze()

    [rule] = [r for r in analysis["recommendations"] if r["rule"] == "slow_agent"]
    assert "p95 is 7.5 s" in rule["message"] and "architect (stage plan" in rule["message"]
    assert kpi(analysis, "agent_response_p95")["state"] == "breach"


def test_slow_validation_cites_its_share(history):
    history.spread(["committed"] * 10, durations={"plan": 1.0, "validate": 3.0})

    [rule] = [r for r in history.analyze()["recommendations"] if r["rule"] == "slow_validation"]

    assert rule["message"].startswith("Validation is 75 % of cycle time (p95 3.0 s)")


def test_low_success_names_the_most_common_reason_and_what_to_do(history):
    history.spread(["committed"] * 5 + ["tests_failed"] * 3 + ["llm_error"] * 2)

    [rule] = [r for r in history.analyze()["recommendations"] if r["rule"] == "low_success"]

    assert rule["message"].startswith("Success rate is 50 % over 10 cycles (target 90 %); 3 of 5")
    assert "tests_failed" in rule["message"] and "stronger model" in rule["message"]


def test_internal_errors_cite_their_correlation_ids(history):
    history.spread(["committed"] * 6)
    history.add("internal_error", at=NOW - 50, correlation_id="bug-42")

    analysis = history.analyze()

    [rule] = [r for r in analysis["recommendations"] if r["rule"] == "internal_errors"]
    assert (
        "1 cycle(s) failed with internal_error" in rule["message"] and "bug-42" in rule["message"]
    )
    assert kpi(analysis, "internal_errors")["state"] == "breach"


def test_slow_recovery_cites_the_mean_time_to_recovery(history):
    history.spread(["committed"] * 5, over=DAY)
    history.add("llm_error", at=NOW - 1000)
    history.add("llm_error", at=NOW - 950)
    history.add("committed", at=NOW - 880, durations={"scan": 0.0})  # 120 s after the first

    analysis = history.analyze()

    [rule] = [r for r in analysis["recommendations"] if r["rule"] == "slow_recovery"]
    assert rule["message"].startswith("Mean time to recovery is 120 s over 1 recoveries")
    assert kpi(analysis, "mttr")["value"] == pytest.approx(120.0)


def test_low_throughput_says_whether_the_pause_or_the_cycles_are_slow(history):
    history.spread(["committed"] * 10)

    [rule] = [r for r in history.analyze()["recommendations"] if r["rule"] == "low_throughput"]

    assert rule["message"].startswith("10 objectives/day at the observed pace (target 100)")
    assert "lower service.interval" in rule["message"]


def test_mostly_rejected_names_the_reason(history):
    history.spread(["no_objective"] * 6 + ["committed"] * 4)

    [rule] = [r for r in history.analyze()["recommendations"] if r["rule"] == "mostly_rejected"]

    assert rule["message"].startswith("60 % of cycles were rejected, mostly no_objective")


def test_retries_and_breakers_fire_from_their_counts():
    measured = Measurements(
        source="test",
        window_s=DAY,
        observed_s=DAY,
        cycles=200,
        outcomes={"succeeded": 200},
        reasons={"committed": 200},
        llm_calls=800,
        retries=120,
        breaker_opens=3,
    )

    analysis = PerformanceAnalyzer(lambda: measured).analyze_agent_performance()

    messages = {r["rule"]: r["message"] for r in analysis["recommendations"]}
    assert messages["frequent_retries"].startswith("120 retries for 800 model calls (15 %)")
    assert messages["breakers_opened"].startswith("Circuit breakers opened 3 time(s)")


def test_every_rule_is_exercised_by_this_module():
    exercised = {
        "llm_share",
        "slow_agent",
        "slow_validation",
        "low_success",
        "internal_errors",
        "slow_recovery",
        "low_throughput",
        "mostly_rejected",
        "frequent_retries",
        "breakers_opened",
    }
    assert {rule.__name__ for rule in RULES} == exercised


# -- helpers ------------------------------------------------------------------------------------
def test_the_memory_analyzer_opens_the_database_read_only(history):
    history.spread(["committed"] * 5)

    analysis = memory_analyzer(history.memory.path, DAY).analyze_agent_performance()

    assert analysis["overall_performance"]["cycles"] == 5


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("24h", 86400), ("7d", 604800)])
def test_windows_parse_and_print_back(text, seconds):
    assert parse_window(text) == seconds
    assert format_window(seconds) == text


@pytest.mark.parametrize("text", ["", "24", "h", "-1h", "0h", "1y"])
def test_a_bad_window_says_which_forms_work(text):
    with pytest.raises(ValueError, match=r"e\.g\. 30m, 24h, 7d"):
        parse_window(text)


def test_markdown_has_the_score_the_kpi_table_and_the_recommendations(history):
    history.spread(["committed"] * 5 + ["tests_failed"] * 5)

    text = to_markdown(history.analyze())

    assert text.startswith("## Hephaestus performance, last 24h")
    assert "| Success rate | 50.0 % | ≥ 90.0 % | ❌ breach |" in text
    assert "### Recommendations" in text and "- Success rate is 50 %" in text


def test_markdown_without_data_says_so(history):
    assert "**Not enough data**: 0 cycle(s) in the window" in to_markdown(history.analyze())


def test_bottlenecks_of_no_cycle_time_are_none():
    assert bottlenecks(Measurements(source="t", window_s=1)) == []
