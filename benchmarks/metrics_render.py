"""Scenario 4: ``/metrics`` rendering, Prometheus text and OpenMetrics, in-process and over HTTP.

In-process: this process declares every series the agent declares at start (every
outcome and reason, stage, agent, model and breaker), then observes each histogram and
counter child once with an exemplar, as a long-running service would have them, and
times the service's own render function in CPU time of the rendering thread (a render is
CPU-bound, and CPU time is what other processes' load does not inflate; the wall time is
printed too). Over HTTP: ``hephaestus serve`` on the sample,
idle after its first cycle, scraped from here with keep-alive. The two formats alternate.

    python -m benchmarks.metrics_render   # BENCH_SCRAPES
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client import Counter, Histogram

from benchmarks.fixtures import make_repo, serve
from benchmarks.harness import Report, count, interleave, quantile, run
from hephaestus.agent.models import AGENT_OF_STAGE, Reason, Stage
from hephaestus.config import ROLES
from hephaestus.telemetry import Metrics, MetricsRenderer, declare_breaker, declare_series

SCRAPES = count("BENCH_SCRAPES", 200, 5)
FORMATS = {"text": "text/plain", "openmetrics": "application/openmetrics-text; version=1.0.0"}
EXEMPLAR = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}


def populate(metrics: Metrics) -> None:
    """Every series the agent declares, each histogram and counter observed once."""
    declare_series(
        metrics,
        outcome_reasons=[(r.outcome.value, r.value) for r in Reason],
        stages=[s.value for s in Stage],
        agents=list(AGENT_OF_STAGE.values()),
        provider="openai",
        models=["model-a", "model-b"],
    )
    for role in ROLES:
        declare_breaker(metrics, f"{role}:model-a")
    for metric in metrics.by_name().values():
        if not isinstance(metric, (Counter, Histogram)):
            continue
        for family in metric.collect():
            for labels in {_labels(sample.labels) for sample in family.samples}:
                child = metric.labels(**dict(labels)) if labels else metric
                if isinstance(metric, Histogram):
                    child.observe(0.3, exemplar=EXEMPLAR)
                else:
                    child.inc(exemplar=EXEMPLAR)


def _labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "le"))


def in_process(
    render_metrics: MetricsRenderer, accept: str, walls: list[float]
) -> Callable[[], float]:
    """Time one render of the service's ``/metrics`` body: CPU seconds (wall into ``walls``)."""

    def render() -> float:
        started, cpu = time.perf_counter(), time.thread_time()
        render_metrics(accept)
        cpu = time.thread_time() - cpu
        walls.append(time.perf_counter() - started)
        return cpu

    return render


def over_http(client: httpx.Client, url: str, accept: str) -> Callable[[], float]:
    """Time one scrape in this format (seconds)."""

    def scrape() -> float:
        started = time.perf_counter()
        client.get(url, headers={"Accept": accept}).raise_for_status()
        return time.perf_counter() - started

    return scrape


def samples_in(body: bytes) -> int:
    """How many samples an exposition holds (lines that are not comments)."""
    return sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))


def measure(report: Report) -> None:
    """Render in-process, then scrape a served agent; the goal is on each p50."""
    metrics = Metrics()  # on the default registry, like the service's
    populate(metrics)
    render_metrics = MetricsRenderer(metrics.registry)
    for name, accept in FORMATS.items():
        body, _ = render_metrics(accept)
        report.row(f"in-process {name}: {samples_in(body)} samples, {len(body)} bytes")
    walls: dict[str, list[float]] = {name: [] for name in FORMATS}
    renders = {n: in_process(render_metrics, a, walls[n]) for n, a in FORMATS.items()}
    timed = interleave(renders, SCRAPES, warmup=3)
    for name, values in walls.items():
        report.row(f"in-process {name}: wall p50 {quantile(values, 0.5) * 1000:.2f} ms")
    _goals(report, "in-process, CPU", timed)
    with (
        tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp,
        serve(make_repo(Path(tmp) / "repo"), interval=100_000) as service,
        httpx.Client(timeout=30) as client,
    ):
        service.wait_for_cycles(1)
        url = f"{service.url}/metrics"
        for name, accept in FORMATS.items():
            body = client.get(url, headers={"Accept": accept}).content
            report.row(f"over HTTP {name}: {samples_in(body)} samples, {len(body)} bytes")
        scrapes = {n: over_http(client, url, a) for n, a in FORMATS.items()}
        timed = interleave(scrapes, SCRAPES, warmup=3)
    _goals(report, "over HTTP", timed)


def _goals(report: Report, where: str, timed: dict[str, list[float]]) -> None:
    for name, values in timed.items():
        report.row(
            f"{where} {name}: p50 {quantile(values, 0.5) * 1000:.2f} ms, "
            f"p99 {quantile(values, 0.99) * 1000:.2f} ms over {len(values)} renders"
        )
        report.goal(f"/metrics {name} p50, {where}", 5.0, "ms", [v * 1000 for v in values])


if __name__ == "__main__":
    run("4 /metrics rendering", measure)
