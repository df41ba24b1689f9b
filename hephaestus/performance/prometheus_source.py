"""Measurements from a Prometheus server's HTTP API (``/api/v1/query``), as PromQL.

Every query is restricted to the scrape jobs that expose ``hephaestus_build_info``, so
other applications' ``gen_ai_*`` or ``up`` series never mix in. Counts come from
``increase()`` and are rounded; quantiles from the histograms' buckets.
"""

from __future__ import annotations

import math
import time
from typing import Any

import httpx

from hephaestus.performance.measurements import Measurements, TimeStat


class PrometheusError(RuntimeError):
    """Prometheus cannot be reached or refused a query; the message says which."""


class PrometheusSource:
    """Runs the queries of :func:`measure` against one Prometheus server."""

    def __init__(
        self, url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        """The instant vector ``promql`` evaluates to at ``at``."""
        try:
            response = self._client.get("/api/v1/query", params={"query": promql, "time": at})
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            error = body.get("error") or response.text[:200]
            raise PrometheusError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} to "
                f"{promql!r}: {error}"
            )
        return list(body["data"]["result"])

    def measure(self, window_s: float, now: float | None = None) -> Measurements:
        """Measurements of the last ``window_s`` seconds."""
        return _Queries(self, window_s, time.time() if now is None else now).measure()


def _value(sample: dict[str, Any]) -> float | None:
    number = float(sample["value"][1])
    return None if math.isnan(number) or math.isinf(number) else number


class _Queries:
    def __init__(self, source: PrometheusSource, window_s: float, now: float) -> None:
        self.source, self.window_s, self.now = source, window_s, now
        self.range = f"{max(1, int(window_s))}s"
        self.jobs = ""

    def vector(self, template: str) -> list[dict[str, Any]]:
        promql = template.replace("{J", f'{{job=~"{self.jobs}"').replace("[W", f"[{self.range}")
        return self.source.query(promql, self.now)

    def scalar(self, template: str) -> float | None:
        result = self.vector(template)
        return _value(result[0]) if result else None

    def by(self, label: str, template: str) -> dict[str, float]:
        found = {}
        for sample in self.vector(template):
            value = _value(sample)
            if value is not None:
                found[sample["metric"].get(label, "")] = value
        return found

    def measure(self) -> Measurements:
        measured = Measurements(source=f"prometheus:{self.source.url}", window_s=self.window_s)
        jobs = self.vector("group by (job) (last_over_time(hephaestus_build_info[W]))")
        if not jobs:
            measured.notes.append("Prometheus has no hephaestus_build_info in the window")
            return measured
        self.jobs = "|".join(sorted(s["metric"].get("job", "") for s in jobs))
        self._cycles(measured)
        self._time(measured)
        self._reliability(measured)
        return measured

    def _cycles(self, m: Measurements) -> None:
        started = self.scalar("min(min_over_time(process_start_time_seconds{J}[W]))")
        if started is not None:  # observed since the earliest process start seen in the window
            m.observed_s = max(0.0, min(self.window_s, self.now - started))
        for sample in self.vector(
            "sum by (outcome, reason) (increase(hephaestus_cycles_total{J}[W]))"
        ):
            count = round(_value(sample) or 0)
            if count:
                labels = sample["metric"]
                m.outcomes[labels["outcome"]] = m.outcomes.get(labels["outcome"], 0) + count
                m.reasons[labels["reason"]] = m.reasons.get(labels["reason"], 0) + count
        m.cycles = sum(m.outcomes.values())

    def _p95(self, metric: str, by: str = "") -> str:
        group = f"{by}, le" if by else "le"
        return f"histogram_quantile(0.95, sum by ({group}) (increase({metric}_bucket{{J}}[W])))"

    def _stats(self, metric: str, label: str) -> dict[str, TimeStat]:
        totals = self.by(label, f"sum by ({label}) (increase({metric}_sum{{J}}[W]))")
        counts = self.by(label, f"sum by ({label}) (increase({metric}_count{{J}}[W]))")
        quantiles = self.by(label, self._p95(metric, label))
        return {
            name: TimeStat(total, round(counts.get(name, 0)), quantiles.get(name))
            for name, total in totals.items()
            if round(counts.get(name, 0))
        }

    def _time(self, m: Measurements) -> None:
        m.cycle_time_s = (
            self.scalar("sum(increase(hephaestus_cycle_duration_seconds_sum{J}[W]))") or 0.0
        )
        m.cycle_p95_s = self.scalar(self._p95("hephaestus_cycle_duration_seconds"))
        m.stages = self._stats("hephaestus_stage_duration_seconds", "stage")
        m.agent_p95_s = self.scalar(self._p95("hephaestus_agent_response_seconds"))
        m.models = self._stats("gen_ai_client_operation_duration_seconds", "gen_ai_request_model")
        m.llm_calls = sum(stat.count for stat in m.models.values())

    def _reliability(self, m: Measurements) -> None:
        recoveries = round(
            self.scalar("sum(increase(hephaestus_recovery_seconds_count{J}[W]))") or 0
        )
        if recoveries:
            total = self.scalar("sum(increase(hephaestus_recovery_seconds_sum{J}[W]))") or 0.0
            m.recoveries, m.mttr_s = recoveries, total / recoveries
        m.uptime_ratio = self.scalar("avg(avg_over_time(up{J}[W]))")
        m.retries = round(self.scalar("sum(increase(stamina_retries_total{J}[W]))") or 0)
        m.breaker_opens = round(
            self.scalar(
                'sum(increase(hephaestus_circuit_breaker_transitions_total{J,to_state="open"}[W]))'
            )
            or 0
        )
