"""The service's HTTP server under a burst and under slow clients, as ratios in one run.

Starts ``hephaestus serve`` (Starlette on uvicorn) on the sample project in its own
process, waits for its first cycle so the loop is idle, then measures ``/metrics`` latency
from this process:

- idle: one request at a time (the baseline);
- burst: ``--burst`` concurrent requests at once (p50, p99, max, and how many got 200);
- slow clients: the same burst while ``--slow`` connections hold half-sent requests.

    python benchmarks/http_burst.py [--burst 200] [--slow 500] [--rounds 3] [--json]

Exit status 1 when a request of a burst is not answered 200, or when slow clients make
the burst's p99 more than ``SLOW_BUDGET`` times the burst's p99 without them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from hephaestus.sample import create_demo_repo

SLOW_BUDGET = 2.0


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def burst(url: str, count: int) -> tuple[list[float], int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one() -> tuple[float, int]:
            started = time.perf_counter()
            response = await client.get(url)
            return time.perf_counter() - started, response.status_code

        results = await asyncio.gather(*(one() for _ in range(count)))
    return [r[0] for r in results], sum(r[1] == 200 for r in results)


def idle(url: str, count: int) -> list[float]:
    times = []
    with httpx.Client(timeout=60) as client:
        for _ in range(count):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            times.append(time.perf_counter() - started)
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(times) * 1000, 2),
        "p99_ms": round(quantile(times, 0.99) * 1000, 2),
        "max_ms": round(max(times) * 1000, 2),
    }


def measure(url: str, address: tuple[str, int], args: argparse.Namespace) -> dict:
    baseline = idle(url, 50)
    plain: list[float] = []
    slowed: list[float] = []
    answered = {"burst": 0, "burst with slow clients": 0}
    for _ in range(args.rounds):  # interleaved, so drift affects both alike
        times, ok = asyncio.run(burst(url, args.burst))
        plain += times
        answered["burst"] += ok
        with ExitStack() as stack:
            for _ in range(args.slow):
                conn = stack.enter_context(socket.create_connection(address, timeout=30))
                conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            times, ok = asyncio.run(burst(url, args.burst))
        slowed += times
        answered["burst with slow clients"] += ok
    expected = args.burst * args.rounds
    rows = {
        "idle": {**summary(baseline), "answered": "-"},
        "burst": {**summary(plain), "answered": f"{answered['burst']}/{expected}"},
        "burst with slow clients": {
            **summary(slowed),
            "answered": f"{answered['burst with slow clients']}/{expected}",
        },
    }
    slow_ratio = round(quantile(slowed, 0.99) / quantile(plain, 0.99), 2)
    rows["burst"]["p99_vs_idle_p50"] = round(quantile(plain, 0.99) / statistics.median(baseline), 1)
    rows["burst with slow clients"]["p99_vs_burst_p99"] = slow_ratio
    ok = all(n == expected for n in answered.values()) and slow_ratio <= SLOW_BUDGET
    return {"rows": rows, "ok": ok}


def wait_for_first_cycle(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/api/health", timeout=5).json()["cycles_run"] >= 1:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"hephaestus serve did not run its first cycle (exit {server.poll()})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--slow", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hephaestus-bench-http-"))
    repo = create_demo_repo(root / "repo")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEPHAESTUS_", "OTEL_"))}
    env |= {"HEPHAESTUS_LOGGING_LEVEL": "error", "HEPHAESTUS_SERVICE_READ_TIMEOUT": "120"}
    command = [sys.executable, "-m", "hephaestus", "serve", "--project", str(repo)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--interval", "100000"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_first_cycle(url, server)
        result = measure(f"{url}/metrics", ("127.0.0.1", port), args)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, row in result["rows"].items():
            extra = {k: v for k, v in row.items() if k.endswith(("_p50", "_p99"))}
            print(
                f"{name:<24} p50 {row['p50_ms']:>8.2f} ms  p99 {row['p99_ms']:>8.2f} ms  "
                f"max {row['max_ms']:>8.2f} ms  answered {row['answered']:<9} "
                + " ".join(f"{k}={v}" for k, v in extra.items())
            )
        print("ok" if result["ok"] else f"OVER BUDGET (slow clients may cost x{SLOW_BUDGET})")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
