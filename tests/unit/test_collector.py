"""MetricsCollector: exact aggregates, bounded memory, timers that never mix."""

from __future__ import annotations

import gc
import json
import logging
import random
import threading

import pytest
from prometheus_client import REGISTRY

from hephaestus.telemetry import MetricsCollector
from hephaestus.telemetry.collector import OVERFLOW


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reachable(root: object) -> int:
    """How many objects ``root`` holds, directly or not (modules and classes excluded)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type) or type(obj).__name__ == "module":
            continue
        seen.add(id(obj))
        stack.extend(gc.get_referents(obj))
    return len(seen)


def test_a_summary_of_known_values_is_exact_and_p95_within_the_sketch_accuracy():
    collector = MetricsCollector(feed_catalog=False)
    for value in range(1, 101):
        collector.record_metric("latency", value, {"route": "/x"})
    collector.record_metric("latency", 7, {"route": "/y"})

    summary = collector.get_summary()

    x = summary["latency{route=/x}"]
    assert (x["count"], x["sum"], x["avg"], x["min"], x["max"], x["latest"]) == (
        100,
        5050.0,
        50.5,
        1.0,
        100.0,
        100.0,
    )
    assert x["p95"] == pytest.approx(95, rel=collector.relative_accuracy * 2)
    assert (x["name"], x["tags"]) == ("latency", {"route": "/x"})
    assert summary["latency{route=/y}"]["count"] == 1


def test_tags_are_one_series_whatever_their_order():
    collector = MetricsCollector(feed_catalog=False)
    collector.record_metric("m", 1, {"a": 1, "b": 2})
    collector.record_metric("m", 3, {"b": 2, "a": 1})

    assert list(collector.get_summary()) == ["m{a=1,b=2}"]
    assert collector.get_summary()["m{a=1,b=2}"]["avg"] == 2


def test_memory_does_not_grow_with_the_number_of_records():
    collector = MetricsCollector(feed_catalog=False, max_series=50, bin_limit=256)
    rng = random.Random(7)

    def record(count: int) -> None:
        for _ in range(count):
            value = 10 ** rng.uniform(-1, 1)  # two decades: about 230 sketch bins
            collector.record_metric("op", value, {"shard": rng.randrange(60)})

    record(200_000)
    held_early = reachable(collector)
    record(800_000)
    held_late = reachable(collector)

    summary = collector.get_summary()
    assert sum(s["count"] for s in summary.values()) == 1_000_000
    assert len(summary) == 51  # 50 series and the overflow series
    assert held_late <= held_early * 1.02
    assert held_late < 51 * (256 + 64)  # bounded by series x bins, not by records


def test_name_and_tag_sets_beyond_the_cap_go_to_overflow_with_one_warning(caplog):
    collector = MetricsCollector(feed_catalog=False, max_series=2)
    with caplog.at_level(logging.WARNING, logger="hephaestus.telemetry.collector"):
        for n in range(5):
            collector.record_metric(f"name{n}", n)

    summary = collector.get_summary()
    assert set(summary) == {"name0", "name1", OVERFLOW}
    assert summary[OVERFLOW]["count"] == 3
    assert len([r for r in caplog.records if "series limit" in r.getMessage()]) == 1


def test_concurrent_timers_of_one_name_each_measure_their_own_operation():
    clock = Clock()
    collector = MetricsCollector(feed_catalog=False, clock=clock)
    first = collector.start_timer("call")
    clock.now = 2.0
    second = collector.start_timer("call")
    clock.now = 5.0

    assert collector.end_timer(second) == 3.0  # ended first, started second
    clock.now = 10.0
    assert collector.end_timer(first) == 10.0
    summary = collector.get_summary()["call"]
    assert (summary["count"], summary["min"], summary["max"]) == (2, 3.0, 10.0)


def test_timers_are_safe_across_threads():
    collector = MetricsCollector(feed_catalog=False)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(500):
                ids = [collector.start_timer("op", {"kind": "a"}) for _ in range(3)]
                for timer_id in reversed(ids):
                    assert collector.end_timer(timer_id) >= 0
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert collector.get_summary()["op{kind=a}"]["count"] == 8 * 500 * 3


def test_ending_an_unknown_timer_says_what_to_pass():
    collector = MetricsCollector(feed_catalog=False)
    timer_id = collector.start_timer("op")
    collector.end_timer(timer_id)

    with pytest.raises(KeyError, match="use the id start_timer returned"):
        collector.end_timer(timer_id)


def test_running_timers_are_bounded(caplog):
    collector = MetricsCollector(feed_catalog=False, max_timers=3)
    ids = [collector.start_timer("leak") for _ in range(5)]

    with pytest.raises(KeyError):
        collector.end_timer(ids[0])  # dropped as the oldest
    assert collector.end_timer(ids[4]) >= 0


def test_the_timer_block_is_recorded_even_when_it_raises():
    collector = MetricsCollector(feed_catalog=False)
    with pytest.raises(RuntimeError), collector.timer("boom"):
        raise RuntimeError("x")

    assert collector.get_summary()["boom"]["count"] == 1


def test_a_catalog_metric_feeds_prometheus_rather_than_a_second_store():
    collector = MetricsCollector()
    labels = {"stage": "scan", "outcome": "collector-test"}
    before = REGISTRY.get_sample_value("hephaestus_stage_duration_seconds_count", labels) or 0

    collector.record_metric("hephaestus_stage_duration_seconds", 0.25, labels)
    collector.record_metric("hephaestus_stage_duration_seconds", 0.75, labels)

    assert REGISTRY.get_sample_value("hephaestus_stage_duration_seconds_count", labels) == (
        before + 2
    )
    assert REGISTRY.get_sample_value("hephaestus_stage_duration_seconds_sum", labels) >= 1.0
    assert (
        collector.get_summary()[
            "hephaestus_stage_duration_seconds{outcome=collector-test,stage=scan}"
        ]["avg"]
        == 0.5
    )


def test_a_catalog_metric_with_the_wrong_tags_is_refused():
    collector = MetricsCollector()

    with pytest.raises(ValueError, match="labels \\(stage, outcome\\)"):
        collector.record_metric("hephaestus_stage_duration_seconds", 1.0, {"stage": "scan"})


def test_export_writes_the_summary_as_json(tmp_path):
    collector = MetricsCollector(feed_catalog=False)
    collector.record_metric("m", 2.0)

    path = collector.export_metrics(tmp_path / "out" / "metrics.json")

    document = json.loads(path.read_text())
    assert document["metrics"]["m"]["count"] == 1
    assert document["exported_at"] > 0
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temporary left
