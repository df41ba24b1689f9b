"""Measurements from the memory database: one row per cycle, with per-stage durations.

Memory records stages, not single model calls: a model's sample is a cycle's time in the
stages that call a model, divided by its calls, attributed to the model(s) the cycle used.
Uptime, retries and breaker transitions are not in memory (Prometheus has them).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from hephaestus.agent import Memory
from hephaestus.agent.models import AGENT_OF_STAGE
from hephaestus.performance.measurements import Measurements, TimeStat, p95

MAX_ROWS = 100_000


def from_memory(memory: Memory, window_s: float, now: float | None = None) -> Measurements:
    """Measure the cycles memory holds that started in the last ``window_s`` seconds."""
    now = time.time() if now is None else now
    start = now - window_s
    rows = memory.finished_since(start, MAX_ROWS)
    first = memory.first_started()
    measured = _measure_rows(rows, window_s, f"memory:{memory.path}")
    if first is not None:
        measured.observed_s = max(0.0, now - max(first, start))
    if len(rows) == MAX_ROWS:
        measured.notes.append(f"only the first {MAX_ROWS} cycles of the window were read")
    return measured


def _measure_rows(rows: list[dict[str, Any]], window_s: float, source: str) -> Measurements:
    """Measurements of finished cycle rows, oldest first."""
    rows = [r for r in rows if r.get("outcome")]
    outcomes = Counter(r["outcome"] for r in rows)
    reasons = Counter(r["reason"] for r in rows)
    durations = [_duration(r) for r in rows]
    measured = Measurements(
        source=source,
        window_s=window_s,
        cycles=len(rows),
        outcomes=dict(outcomes),
        reasons=dict(reasons),
        cycle_time_s=sum(durations),
        cycle_p95_s=p95(durations),
        stages=_stages(rows),
        agent_p95_s=p95(
            [v for r in rows for s, v in r["durations"].items() if s in AGENT_OF_STAGE]
        ),
        models=_models(rows),
        llm_calls=sum(int(r.get("llm_calls") or 0) for r in rows),
        internal_error_ids=[r["correlation_id"] for r in rows if r["reason"] == "internal_error"],
    )
    recoveries = list(_recoveries(rows))
    measured.recoveries = len(recoveries)
    measured.mttr_s = sum(recoveries) / len(recoveries) if recoveries else None
    return measured


def _duration(row: dict[str, Any]) -> float:
    return max(0.0, (row.get("finished_at") or row["started_at"]) - row["started_at"])


def _stages(rows: Iterable[dict[str, Any]]) -> dict[str, TimeStat]:
    samples: dict[str, list[float]] = {}
    for row in rows:
        for stage, seconds in row["durations"].items():
            samples.setdefault(stage, []).append(float(seconds))
    return {stage: TimeStat(sum(v), len(v), p95(v)) for stage, v in samples.items()}


def _models(rows: Iterable[dict[str, Any]]) -> dict[str, TimeStat]:
    totals: dict[str, float] = {}
    calls: dict[str, int] = {}
    per_call: dict[str, list[float]] = {}
    for row in rows:
        llm_s = sum(v for s, v in row["durations"].items() if s in AGENT_OF_STAGE)
        count = int(row.get("llm_calls") or 0)
        if not row.get("model") or not count:
            continue
        model = row["model"]
        totals[model] = totals.get(model, 0.0) + llm_s
        calls[model] = calls.get(model, 0) + count
        per_call.setdefault(model, []).append(llm_s / count)
    return {m: TimeStat(totals[m], calls[m], p95(per_call[m])) for m in totals}


def _recoveries(rows: Iterable[dict[str, Any]]) -> Iterable[float]:
    """Seconds from the first failure of each streak to the success that ends it."""
    streak_started: float | None = None
    for row in rows:
        if row["outcome"] == "failed" and streak_started is None:
            streak_started = row["started_at"]
        elif row["outcome"] == "succeeded" and streak_started is not None:
            yield (row.get("finished_at") or row["started_at"]) - streak_started
            streak_started = None
