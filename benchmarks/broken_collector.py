"""Scenario 2, per cycle: what a dead or silent collector costs a cycle, within one process.

A process's speed differs from the next one's by several percent on a shared machine:
more than the 5 ms being checked. So the comparison is made inside each agent process: one
``hephaestus run`` exports to a :class:`SwitchingCollector` that is healthy, dead (each
connection reset at once) or silent (connections accepted, never answered) in turns of a
few seconds, and each cycle that ran wholly within one turn is put to that turn's mode. The
cost is a cycle's own time (minus pytest's ``validate`` stage, which never talks to a
collector) against the median of the same process's healthy cycles. The sample has more
objectives than cycles, so every counted cycle commits one docstring, as in the soak.

    python -m benchmarks.broken_collector   # BENCH_SWITCH_ROUNDS, BENCH_SWITCH_CYCLES
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.fixtures import HEPHAESTUS, agent_env, clone, cycle_seconds, history, make_repo
from benchmarks.harness import QUICK, Report, bootstrap, count, knob, run
from benchmarks.soak import objectives_module

ROUNDS = count("BENCH_SWITCH_ROUNDS", 2, 1)
CYCLES = count("BENCH_SWITCH_CYCLES", 40, 4)
TURN_SECONDS = knob("BENCH_SWITCH_TURN", 5.0, 2.0)
SCHEDULE = ("healthy", "dead", "healthy", "silent")
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"


class SwitchingCollector:
    """An OTLP/HTTP address whose collector is healthy, dead or silent, as ``mode`` says."""

    def __init__(self) -> None:
        self.mode = "healthy"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stopped = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            reader = conn.makefile("rb")
            while self._answer(conn, reader):
                pass

    def _answer(self, conn: socket.socket, reader: Any) -> bool:
        if self.mode == "dead":  # reset: the client fails at once, as on a closed port
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        length = 0
        for line in iter(reader.readline, b"\r\n"):
            if not line:
                return False
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        reader.read(length)
        if self.mode == "silent":  # hold the request until the client gives up
            self._stopped.wait()
            return False
        conn.sendall(_OK)
        return True

    def close(self) -> None:
        """Stop listening and release every held request."""
        self._stopped.set()
        self._listener.close()


@contextlib.contextmanager
def turns(collector: SwitchingCollector) -> Iterator[list[tuple[float, str]]]:
    """Switch the collector's mode every ``TURN_SECONDS``; yield the (start, mode) record."""
    record: list[tuple[float, str]] = []
    done = threading.Event()

    def switch() -> None:
        index = 0
        while not done.is_set():
            collector.mode = SCHEDULE[index % len(SCHEDULE)]
            record.append((time.time(), collector.mode))
            index += 1
            done.wait(TURN_SECONDS)

    thread = threading.Thread(target=switch, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        done.set()
        thread.join()
        collector.mode = "healthy"


def mode_of(row: dict[str, Any], record: list[tuple[float, str]]) -> str | None:
    """The mode a cycle ran under, or ``None`` when a switch fell within it."""
    start, end = float(row["started_at"]), float(row["finished_at"])
    starts = [t for t, _ in record] + [float("inf")]
    for (begun, mode), ended in zip(record, starts[1:], strict=True):
        if begun <= start and end < ended:
            return mode
    return None


def own_time(row: dict[str, Any]) -> float:
    """A cycle's time outside pytest's ``validate`` stage (seconds)."""
    return cycle_seconds(row) - float(row["durations"].get("validate", 0.0))


def one_round(template: Path, workdir: Path, index: int) -> dict[str, list[float]]:
    """One agent process under switching modes: its cycles' own times (s) by mode."""
    repo = clone(template, workdir / f"switch{index}")
    collector = SwitchingCollector()
    env = agent_env({"HEPHAESTUS_TELEMETRY_OTLP_ENDPOINT": collector.url})
    try:
        with turns(collector) as record:
            subprocess.run(
                [*HEPHAESTUS, "run", "--project", str(repo), "--cycles", str(CYCLES)],
                env=env,
                capture_output=True,
                check=True,
                timeout=600,
            )
        rows = history(repo)[1:]  # the first cycle also collects the base's tests
    finally:
        collector.close()
        shutil.rmtree(repo, ignore_errors=True)
    by_mode: dict[str, list[float]] = {mode: [] for mode in SCHEDULE}
    for row in rows:
        mode = mode_of(row, record)
        if mode is not None and row["outcome"] == "succeeded":
            by_mode[mode].append(own_time(row))
    return by_mode


def costs(*healthy_and_broken: list[float]) -> list[float]:
    """Each broken cycle's own time over its process's healthy median (ms).

    Takes each process's healthy and broken times in turn: ``h1, b1, h2, b2, …``.
    """
    pairs = zip(healthy_and_broken[::2], healthy_and_broken[1::2], strict=True)
    return [
        (own - statistics.median(healthy)) * 1000
        for healthy, broken in pairs
        if healthy
        for own in broken
    ]


def median_cost(*healthy_and_broken: list[float]) -> float:
    """The median of :func:`costs` (0 when there is none)."""
    values = costs(*healthy_and_broken)
    return statistics.median(values) if values else 0.0


def measure(report: Report) -> None:
    """``ROUNDS`` agent processes, each switching its collector; goals on the pooled costs."""
    with tempfile.TemporaryDirectory(prefix="hephaestus-bench-") as tmp:
        workdir = Path(tmp)
        # more objectives than cycles: every cycle does the same work (one committed docstring)
        template = make_repo(
            workdir / "template", extra={"inventory/steps.py": objectives_module(0, CYCLES + 8)}
        )
        rounds = [one_round(template, workdir, index) for index in range(ROUNDS)]
    report.row(
        f"{ROUNDS} processes x {CYCLES} cycles, the collector switching every "
        f"{TURN_SECONDS:g} s: {' → '.join(SCHEDULE)} → …"
    )
    for mode in ("dead", "silent"):
        samples = [times for r in rounds for times in (r["healthy"], r[mode])]
        values = costs(*samples)
        if not values and QUICK:
            report.row(f"{mode}: no cycle fell wholly within a {mode} turn (quick run)")
            continue
        report.goal(
            f"{mode} collector: cost per cycle over healthy",
            5.0,
            "ms",
            values,
            interval=bootstrap(median_cost, *samples),  # healthy medians vary too
        )


if __name__ == "__main__":
    run("2 broken collectors, per cycle, within one process", measure)
