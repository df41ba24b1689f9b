"""Scenario 4: ``/metrics`` rendering, Prometheus text and OpenMetrics, in-process and over HTTP.

In-process: this process declares every series the agent declares at start (every
outcome and reason, stage, agent, model and breaker) and observes each histogram and
counter child with an exemplar, as a long-running service would have them. Before each
timed render every child is observed again, so every series has changed since the last
render (a scrape never finds less to format); a render of an unchanged registry is shown
beside it. Times are the rendering thread's CPU time (a render is CPU-bound, and CPU time
is what other processes' load inflates least; wall time is printed too). Over HTTP:
``hephaestus serve`` on the sample, idle after its first cycle, scraped from here with
keep-alive by the standard library's HTTP client (a scraper's own cost is not the
agent's), next to ``/healthz`` on the same connection as the transport's floor. The
formats alternate.

    python -m benchmarks.metrics_render   # BENCH_SCRAPES
"""

from __future__ import annotations

import http.client
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import Counter, Histogram

from benchmarks.fixtures import make_repo, serve
from benchmarks.harness import Report, count, interleave, quantile, run
from hephaestus.agent.models import AGENT_OF_STAGE, Reason, Stage
from hephaestus.config import ROLES
from hephaestus.telemetry import Metrics, MetricsRenderer, declare_breaker, declare_series

SCRAPES = count("BENCH_SCRAPES", 200, 5)
FORMATS = {"text": "text/plain", "openmetrics": "application/openmetrics-text; version=1.0.0"}
EXEMPLAR = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}


def populate(metrics: Metrics) -> Callable[[], None]:
    """Every series the agent declares; returns what observes each child once more."""
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
    touches: list[Callable[[], None]] = []
    for metric in metrics.by_name().values():
        if not isinstance(metric, (Counter, Histogram)):
            continue
        for family in metric.collect():
            for labels in {_labels(sample.labels) for sample in family.samples}:
                touches.append(_touch(metric.labels(**dict(labels)) if labels else metric))

    def touch_every_child() -> None:
        for touch in touches:
            touch()

    touch_every_child()
    return touch_every_child


def _touch(child: Counter | Histogram) -> Callable[[], None]:
    if isinstance(child, Histogram):
        return lambda: child.observe(0.3, exemplar=EXEMPLAR)
    return lambda: child.inc(exemplar=EXEMPLAR)


def _labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "le"))


def in_process(
    render_metrics: MetricsRenderer, accept: str, before: Callable[[], None], walls: list[float]
) -> Callable[[], float]:
    """Time one render of the service's ``/metrics`` body after ``before``: CPU seconds."""

    def render() -> float:
        before()
        started, cpu = time.perf_counter(), time.thread_time()
        render_metrics(accept)
        cpu = time.thread_time() - cpu
        walls.append(time.perf_counter() - started)
        return cpu

    return render


def over_http(client: http.client.HTTPConnection, path: str, accept: str) -> Callable[[], float]:
    """Time one request on a kept-alive connection, until its body is read (seconds)."""

    def scrape() -> float:
        started = time.perf_counter()
        client.request("GET", path, headers={"Accept": accept})
        response = client.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        return time.perf_counter() - started

    return scrape


def samples_in(body: bytes) -> int:
    """How many samples an exposition holds (lines that are not comments)."""
    return sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))


def measure(report: Report) -> None:
    """Render in-process, then scrape a served agent; the goal is on each p50."""
    metrics = Metrics()  # on the default registry, like the service's
    touch_every_child = populate(metrics)
    render_metrics = MetricsRenderer(metrics.registry)
    for name, accept in FORMATS.items():
        body, _ = render_metrics(accept)
        report.row(f"in-process {name}: {samples_in(body)} samples, {len(body)} bytes")
    walls: dict[str, list[float]] = {name: [] for name in FORMATS}
    renders = {
        name: in_process(render_metrics, accept, touch_every_child, walls[name])
        for name, accept in FORMATS.items()
    }
    timed = interleave(renders, SCRAPES, warmup=3)
    for name, values in walls.items():
        report.row(f"in-process {name}: wall p50 {quantile(values, 0.5) * 1000:.2f} ms")
    unchanged = {
        name: in_process(render_metrics, accept, lambda: None, [])
        for name, accept in FORMATS.items()
    }
    for name, values in interleave(unchanged, SCRAPES, warmup=3).items():
        report.row(f"in-process {name}, nothing changed: CPU p50 {_ms(values)}")
    _goals(report, "in-process, CPU, every series changed", timed)
    with (
        tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp,
        serve(make_repo(Path(tmp) / "repo"), interval=100_000) as service,
    ):
        service.wait_for_cycles(1)
        address = urlsplit(service.url)
        client = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        for name, accept in FORMATS.items():
            client.request("GET", "/metrics", headers={"Accept": accept})
            body = client.getresponse().read()
            report.row(f"over HTTP {name}: {samples_in(body)} samples, {len(body)} bytes")
        scrapes = {n: over_http(client, "/metrics", a) for n, a in FORMATS.items()}
        scrapes["healthz"] = over_http(client, "/healthz", "application/json")
        timed = interleave(scrapes, SCRAPES, warmup=3)
        client.close()
    report.row(f"over HTTP /healthz (the transport's floor): p50 {_ms(timed.pop('healthz'))}")
    _goals(report, "over HTTP", timed)


def _ms(values: list[float]) -> str:
    return f"{quantile(values, 0.5) * 1000:.2f} ms"


def _goals(report: Report, where: str, timed: dict[str, list[float]]) -> None:
    for name, values in timed.items():
        report.row(
            f"{where} {name}: p50 {quantile(values, 0.5) * 1000:.2f} ms, "
            f"p99 {quantile(values, 0.99) * 1000:.2f} ms over {len(values)} renders"
        )
        report.goal(f"/metrics {name} p50, {where}", 5.0, "ms", [v * 1000 for v in values])


if __name__ == "__main__":
    run("4 /metrics rendering", measure)
