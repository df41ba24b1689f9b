"""The benchmark harness's statistics and goal logic (no timings: values are given)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

from benchmarks import harness, instructions
from benchmarks import run as bench_run
from benchmarks.broken_collector import costs, median_cost
from benchmarks.harness import Goal, Report, Stats, bootstrap, interleave, quantile, slope
from benchmarks.soak import Probe
from benchmarks.soak import _goals as soak_goals
from benchmarks.telemetry_overhead import Sample, pooled, ratio_of_medians


def test_quantile_interpolates_between_closest_ranks():
    assert quantile([4, 1, 3, 2], 0.5) == 2.5
    assert quantile([4, 1, 3, 2], 0) == 1
    assert quantile([4, 1, 3, 2], 1) == 4
    assert quantile([1, 2, 3, 4, 5], 0.95) == pytest.approx(4.8)
    assert quantile([7], 0.99) == 7
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_stats_are_median_min_max_and_count():
    assert Stats.of([3.0, 1.0, 2.0, 10.0]) == Stats(2.5, 1.0, 10.0, 4)
    with pytest.raises(ValueError):
        Stats.of([])


def test_slope_is_least_squares_and_zero_without_spread():
    assert slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2)
    assert slope([(0, 1), (1, 0), (2, 1), (3, 0)]) == pytest.approx(-0.2)
    assert slope([(0, 4), (1, 4)]) == 0
    assert slope([(1, 4), (1, 9)]) == 0
    assert slope([(0, 4)]) == 0


def test_interleave_alternates_the_order_and_drops_the_warmup():
    calls: list[str] = []

    def variant(name: str):
        def run() -> int:
            calls.append(name)
            return len(calls)

        return run

    results = interleave({n: variant(n) for n in "ABC"}, rounds=2, warmup=1)
    assert "".join(calls) == "ABCCBAABC"
    assert results == {"A": [6, 7], "B": [5, 8], "C": [4, 9]}


def test_a_goal_is_checked_on_the_median_not_on_an_outlier():
    met = Goal("ratio", 1.03, "x", Stats.of([1.0, 1.02, 5.0]))
    missed = Goal("ratio", 1.03, "x", Stats.of([0.5, 1.04, 1.05]))
    assert met.met and "met" in met.line()
    assert not missed.met and "MISSED" in missed.line()
    assert "1.030" in missed.line() and "1.040" in missed.line() and "n=3" in missed.line()


def test_a_report_is_not_ok_once_a_goal_is_missed(capsys):
    report = Report("demo")
    report.goal("fast enough", 5, "ms", [1, 2, 3])
    assert report.ok
    report.goal("small enough", 5, "ms", [6, 7, 1])
    assert not report.ok
    assert [g["met"] for g in report.to_json()["goals"]] == [True, False]
    assert "MISSED  small enough" in capsys.readouterr().out


def test_a_median_over_the_goal_is_noise_while_its_interval_reaches_the_goal():
    noise = Goal("ratio", 1.03, "x", Stats.of([1.0, 1.05, 1.1]), interval=(0.98, 1.12))
    missed = Goal("ratio", 1.03, "x", Stats.of([1.0, 1.05, 1.1]), interval=(1.031, 1.12))
    met = Goal("ratio", 1.03, "x", Stats.of([1.0, 1.02, 1.1]), interval=(0.9, 1.2))

    assert (noise.met, noise.missed, noise.verdict) == (False, False, "noise")
    assert (missed.met, missed.missed, missed.verdict) == (False, True, "MISSED")
    assert (met.met, met.missed, met.verdict) == (True, False, "met")
    assert "noise " in noise.line() and "90% CI 0.980 to 1.120" in noise.line()


def test_a_report_with_a_noisy_goal_is_ok_and_says_which(capsys):
    report = Report("demo")
    report.goal("spread", 5, "ms", [1, 2, 6, 7, 30, 40])  # median 6.5, interval reaches 5
    report.goal("single", 5, "ms", [6])  # one value: no interval, over is missed

    spread, single = report.goals
    assert spread.verdict == "noise" and spread.interval is not None
    assert single.verdict == "MISSED" and single.interval is None
    assert not report.ok
    assert [g["missed"] for g in report.to_json()["goals"]] == [False, True]
    assert [g["verdict"] for g in report.to_json()["goals"]] == ["noise", "MISSED"]
    report.goals.pop()
    assert report.ok


def test_the_bootstrap_interval_is_seeded_and_narrows_with_agreeing_values():
    spread = [1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0]
    low, high = bootstrap(statistics.median, spread)

    assert bootstrap(statistics.median, spread) == (low, high)  # same values, same interval
    assert 1.0 <= low < statistics.median(spread) < high <= 9.0
    assert bootstrap(statistics.median, [4.0] * 9) == (4.0, 4.0)


def test_the_bootstrap_resamples_each_sample_apart_and_keeps_groups_whole():
    seen: list[tuple[list[list[int]], list[int]]] = []

    def statistic(groups: list[list[int]], other: list[int]) -> float:
        seen.append((groups, other))
        return 0.0

    bootstrap(statistic, [[1, 2], [3, 4]], [], resamples=50)

    assert all(g in ([1, 2], [3, 4]) for groups, _ in seen for g in groups)
    assert all(len(groups) == 2 and other == [] for groups, other in seen)


def test_the_telemetry_ratio_pools_cycles_and_compares_medians():
    def run(*cycles: float) -> Sample:
        return Sample(wall=0, cpu=0, cycles=[9.0, *cycles], outcomes=[])

    assert ratio_of_medians([run(2.0, 2.2), run(2.4)], [run(2.0), run(2.0, 1.0)]) == 1.1


def test_a_broken_cycle_costs_its_own_time_over_its_own_process_healthy_median():
    first = ([0.100, 0.110, 0.120], [0.115])  # healthy median 110 ms
    second = ([0.200], [0.190, 0.230])  # a slower process: healthy 200 ms

    assert costs(*first, *second) == pytest.approx([5.0, -10.0, 30.0])
    assert median_cost(*first, *second) == pytest.approx(5.0)
    assert costs([], [0.5]) == [] and median_cost([], [0.5]) == 0.0


def test_the_summary_names_missed_goals_first_then_noisy_ones():
    assert bench_run.verdict([], []) == "all goals met"
    assert bench_run.verdict([], ["a", "b"]).endswith("within the noise: a, b")
    assert bench_run.verdict(["x (goal missed)"], ["a"]) == "NOT MET: x (goal missed)"


def test_main_writes_the_report_and_exits_1_on_a_missed_goal(tmp_path: Path, monkeypatch):
    out = tmp_path / "report.json"
    monkeypatch.setattr(sys, "argv", ["bench", "--json", str(out)])
    assert harness.main("ok", lambda r: r.goal("g", 1, "x", [0.9])) == 0
    assert harness.main("missed", lambda r: r.goal("g", 1, "x", [1.1])) == 1
    assert json.loads(out.read_text())["goals"][0]["met"] is False


def test_knobs_come_from_the_environment_then_quick_mode(monkeypatch):
    monkeypatch.delenv("BENCH_X", raising=False)
    monkeypatch.setattr(harness, "QUICK", False)
    assert harness.count("BENCH_X", 40, 2) == 40
    monkeypatch.setattr(harness, "QUICK", True)
    assert harness.count("BENCH_X", 40, 2) == 2
    monkeypatch.setenv("BENCH_X", "7")
    assert harness.count("BENCH_X", 40, 2) == 7
    assert harness.knob("BENCH_X", 40, 2) == 7.0


def test_a_run_sample_leaves_out_its_warmup_cycle():
    sample = Sample(
        wall=10.0,
        cpu=3.0,
        cycles=[4.0, 2.0, 3.0],
        outcomes=["succeeded"] * 3,
        validate=[3.0, 1.5, 2.0],
    )
    assert sample.counted == [2.0, 3.0]
    assert sample.own == [0.5, 1.0]
    assert sample.outside == 1.0
    assert Sample(wall=5.0, cpu=1.0, cycles=[4.0], outcomes=["failed"]).counted == [4.0]


def test_runs_of_one_set_up_are_pooled_in_order():
    runs = [
        Sample(wall=9.0, cpu=1.0, cycles=[5.0, 1.0, 2.0], outcomes=[], validate=[0, 0, 0]),
        Sample(wall=9.0, cpu=1.0, cycles=[5.0, 3.0], outcomes=[], validate=[0, 0]),
    ]
    assert pooled(runs, lambda s: s.counted) == [1.0, 2.0, 3.0]


def _probes(rss, fds, threads):
    return [Probe(i / 10, r, f, t) for i, (r, f, t) in enumerate(zip(rss, fds, threads))]


def test_the_soak_passes_flat_counts_that_dip_between_cycles():
    report = Report("soak")
    soak_goals(
        report, _probes([70.0] * 8, [11, 15, 11, 16, 11, 15, 12, 11], [5, 6, 5, 5, 6, 5, 5, 5])
    )
    assert report.ok


def test_the_soak_catches_a_leak_in_each_quantity():
    leaking = range(10, 18)
    report = Report("soak")
    soak_goals(report, _probes([70.0 + x for x in leaking], leaking, leaking))
    assert [goal.missed for goal in report.goals] == [True, True, True]


def _valgrind_log(pid: int, command: str, instructions: str | None) -> str:
    lines = [
        f"=={pid}== Cachegrind, a cache and branch-prediction profiler",
        f"=={pid}== Command: {command}",
        f"=={pid}== Parent PID: 1",
        f"=={pid}== ",
    ]
    if instructions is not None:
        lines.append(f"=={pid}== I   refs:      {instructions}")
    return "\n".join(lines) + "\n"


def test_instruction_logs_count_the_agent_and_each_pytest_run_apart(tmp_path):
    agent = "/venv/bin/python -m hephaestus run --project /tmp/x --cycles 3"
    logs = {
        10: (agent, "1,000,000"),
        11: (agent, None),  # forked, then exec'd git: not traced, no count
        12: ("/venv/bin/python -m pytest -p hephaestus.agent.pytest_report -q", "2,000"),
        13: ("/venv/bin/python -m pytest -p x --collect-only -q", "500"),  # the baseline
        14: ("/venv/bin/python -m pytest -p hephaestus.agent.pytest_report -q", "3,000"),
        15: ("/venv/bin/python -c 'import helper'", "40"),  # any other child: the agent's
    }
    for pid, (command, count) in logs.items():
        (tmp_path / f"{pid}.log").write_text(_valgrind_log(pid, command, count))

    counted = instructions._read_logs(tmp_path)

    assert counted.agent == 1_000_040
    assert sorted(counted.pytest_runs) == [2_000, 3_000]
