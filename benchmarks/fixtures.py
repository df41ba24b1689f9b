"""What the scenarios run against: sample repositories, the agent's CLI, collectors.

The agent is driven through its stable contract — the ``hephaestus`` command line and
``HEPHAESTUS_*``/``OTEL_*`` variables — in a process of its own, so every run starts with
a fresh interpreter, a fresh tracer and fresh metrics.
"""

from __future__ import annotations

import compileall
import contextlib
import functools
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

HEPHAESTUS = [sys.executable, "-m", "hephaestus"]
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "inventory"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; return its stdout."""
    done = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def make_repo(dest: Path, copies: int = 1, extra: Mapping[str, str] | None = None) -> Path:
    """The sample project as a fresh git repo, ``copies`` times over.

    The copies (``copies/copyN/``, tests included) make a repository N times the sample's
    size; the sample's ``testpaths`` keeps its suite the same. ``extra`` adds files.
    """
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    shutil.copytree(SAMPLE, dest, ignore=ignore)
    for number in range(1, copies):
        shutil.copytree(SAMPLE, dest / "copies" / f"copy{number}", ignore=ignore)
    for path, text in (extra or {}).items():
        (dest / path).write_text(text)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "chore: import the sample")
    return dest


def clone(template: Path, dest: Path) -> Path:
    """A byte-identical copy of ``template`` (its ``.git`` included)."""
    shutil.copytree(template, dest, symlinks=True)
    return dest


def agent_env(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without the caller's HEPHAESTUS_*/OTEL_*, plus ``settings``.

    ``PYTHONDONTWRITEBYTECODE`` goes too: an installed agent starts from cached bytecode,
    and a machine that forbids writing it would compile every module at every start.
    """
    dropped = ("HEPHAESTUS_", "OTEL_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {**env, "HEPHAESTUS_LOGGING_LEVEL": "error", **(settings or {})}


@dataclass(frozen=True)
class Run:
    """One ``hephaestus`` process: exit code, wall time, CPU time (its children's too), output."""

    code: int
    wall: float
    cpu: float
    output: str


def hephaestus(*args: str, env: Mapping[str, str], timeout: float = 600) -> Run:
    """Run the ``hephaestus`` CLI in a new interpreter and time it from spawn to exit."""
    compile_agent()
    before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [*HEPHAESTUS, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 130):
        raise RuntimeError(f"hephaestus {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return Run(done.returncode, wall, _children_cpu() - before, done.stdout + done.stderr)


@functools.cache
def compile_agent() -> None:
    """Byte-compile the agent's modules once, as installing it does.

    The validation subprocess runs with ``PYTHONDONTWRITEBYTECODE=1``, so a module only it
    imports (the pytest trace join) would otherwise be compiled again in every run when a
    source checkout has no current bytecode for it.
    """
    compileall.compile_dir(ROOT / "hephaestus", quiet=1)


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child process (and their reaped children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def history(repo: Path) -> list[dict[str, Any]]:
    """The cycles the agent recorded in ``repo``, oldest first (``hephaestus history --json``)."""
    run = hephaestus(
        "history", "--project", str(repo), "--json", "--limit", "100000", env=agent_env()
    )
    rows = [json.loads(line) for line in run.output.splitlines() if line.startswith("{")]
    return sorted(rows, key=lambda row: row["cycle_number"])


def cycle_seconds(row: Mapping[str, Any]) -> float:
    """Wall time of one recorded cycle."""
    return float(row["finished_at"]) - float(row["started_at"])


def free_port() -> int:
    """A TCP port nobody listens on (closed again at once: a "dead collector")."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Sink(BaseHTTPRequestHandler):
    """Accepts any OTLP/HTTP export and answers 200 with an empty protobuf response.

    HTTP/1.1, so the exporter's connection stays open between exports as it does with a
    real collector (HTTP/1.0 closed it after every export: a new connection each time).
    """

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def otlp_receiver() -> Iterator[str]:
    """A local collector that takes every export (its URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def blackhole() -> Iterator[str]:
    """A collector that accepts connections and never answers (its URL)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in held:
            conn.close()


def machine() -> str:
    """``nproc``, CPU model and load average: the context every result needs."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), load average {load}"


@dataclass(frozen=True)
class Service:
    """A running ``hephaestus serve``: its process and base URL."""

    process: subprocess.Popen[bytes]
    url: str

    def cycles_run(self) -> int | None:
        """Cycles the service has run, from ``/api/health`` (``None`` when it does not answer)."""
        try:
            return int(httpx.get(f"{self.url}/api/health", timeout=10).json()["cycles_run"])
        except (httpx.HTTPError, KeyError, ValueError):
            return None

    def wait_for_cycles(self, cycles: int, timeout: float = 300) -> int:
        """Wait until the service has run ``cycles`` cycles; how many it has run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            done = self.cycles_run()
            if done is not None and done >= cycles:
                return done
            time.sleep(0.2)
        raise RuntimeError(f"hephaestus serve ran no cycle (exit code {self.process.poll()})")


@contextlib.contextmanager
def serve(
    repo: Path, interval: float, settings: Mapping[str, str] | None = None
) -> Iterator[Service]:
    """``hephaestus serve`` on ``repo`` in a process of its own; SIGTERM when done."""
    port = free_port()
    options = ["--project", str(repo), "--port", str(port), "--interval", str(interval)]
    process = subprocess.Popen(
        [*HEPHAESTUS, "serve", *options],
        env=agent_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield Service(process, f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
