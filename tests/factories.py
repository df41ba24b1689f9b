"""Factories for tests: configs, loggers, target repos, agents and a scripted LLM server.

The LLM server is a real HTTP server on a real socket that speaks the OpenAI Chat
Completions protocol; each test scripts its answers.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from hephaestus.agent.build import build_runner
from hephaestus.agent.models import CycleResult
from hephaestus.agent.orchestrator import CycleRunner
from hephaestus.config import Config
from hephaestus.llm.base import Message, Role
from hephaestus.llm.jsontext import extract_json
from hephaestus.llm.offline import OfflineProvider

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "inventory"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


# -- config and logging ---------------------------------------------------------------------
def make_config(**sections: Mapping[str, Any]) -> Config:
    """A default config with ``section={key: value}`` overrides (validated like a file)."""
    return Config().with_overrides(**sections) if sections else Config()


class ListHandler(logging.Handler):
    """Keeps every record it handles, for assertions."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


def make_logger(name: str = "hephaestus.test") -> tuple[logging.Logger, ListHandler]:
    """A logger whose records are kept in the returned handler."""
    logger = logging.getLogger(f"{name}.{id(object())}")
    logger.setLevel(logging.DEBUG)
    handler = ListHandler()
    logger.addHandler(handler)
    return logger, handler


def log_events(stream: io.StringIO, event: str) -> list[dict[str, Any]]:
    """The JSON log lines in ``stream`` (see the ``json_logs`` fixture) with this event."""
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line["event"] == event]


# -- git repos --------------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a test identity and return stdout."""
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=True,
    )
    return proc.stdout


def make_target_repo(
    path: Path, files: Mapping[str, str] | None = None, *, sample: bool = False
) -> Path:
    """A git repo at ``path`` with one commit: the sample project and/or ``files``."""
    path.mkdir(parents=True, exist_ok=True)
    if sample:
        shutil.copytree(
            SAMPLE,
            path,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"),
        )
    for name, text in (files or {}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def repo_snapshot(path: Path) -> dict[str, Any]:
    """HEAD, porcelain status and every file's bytes outside .git/ and .hephaestus/."""
    files = {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not {".git", ".hephaestus"} & set(p.relative_to(path).parts)
    }
    return {
        "head": git(path, "rev-parse", "HEAD").strip(),
        "status": git(path, "status", "--porcelain", "--untracked-files=all"),
        "files": files,
    }


def start_conflicting_merge(repo: Path) -> None:
    """Leave ``repo`` (on ``main``) in a real merge stopped by a conflict: MERGE_HEAD exists."""
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "README.md").write_text("side\n")
    git(repo, "commit", "-q", "-am", "side")
    git(repo, "checkout", "-q", "main")
    (repo / "README.md").write_text("main\n")
    git(repo, "commit", "-q", "-am", "main")
    merge = subprocess.run(["git", "merge", "side"], cwd=repo, capture_output=True, check=False)
    assert merge.returncode != 0 and (repo / ".git" / "MERGE_HEAD").exists()


def eventually(condition: Callable[[], T], timeout: float, interval: float = 0.05) -> T | None:
    """Poll ``condition`` until it returns something truthy: that value, or ``None`` once
    ``timeout`` has passed. Every wait of the tests goes through here.

    The bound only ends a wait for an event that never comes; it returns at the event.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


class FakeClock:
    """A monotonic clock that moves only when told to (thread-safe)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        with self._lock:
            self.now += seconds


def make_agent(config: Config, repo: Path, **kwargs: Any) -> CycleRunner:
    """A ready cycle runner on ``repo``."""
    return build_runner(config, repo, **kwargs)


def run_one_cycle(config: Config, repo: Path, **kwargs: Any) -> CycleResult:
    """One cycle on ``repo`` by a runner of its own, closed afterwards."""
    runner = make_agent(config, repo, **kwargs)
    try:
        return runner.run_cycle()
    finally:
        runner.close()


def run_cycles(
    repo: Path, cycles: int, env: Mapping[str, str] | None = None, **telemetry: Any
) -> tuple[list[CycleResult], list[str], float]:
    """Run offline cycles with ``[telemetry]`` overrides; return their results, the span
    exporters in use and how long ``close()`` took (the flush at exit)."""
    runner = make_agent(make_config(telemetry=telemetry), repo, env=env)
    try:
        exporters = list(runner.telemetry.tracing.exporters)
        results = [runner.run_cycle() for _ in range(cycles)]
    finally:
        started = time.monotonic()
        runner.close()
        closing = time.monotonic() - started
    return results, exporters, closing


def assert_succeeded(results: Iterable[CycleResult]) -> None:
    """Every cycle succeeded; a failure shows its outcome and the start of its detail."""
    others = [(r.outcome.value, r.detail[:200]) for r in results if r.outcome.value != "succeeded"]
    assert not others, others


# -- the command line -------------------------------------------------------------------------
def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without Hephaestus or OTel settings, with JSON logs, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HEPHAESTUS_", "OTEL_")) and key != "COLUMNS"
    }
    return {**env, "HEPHAESTUS_LOGGING_FORMAT": "json", **(extra or {})}


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hephaestus args`` to the end in a clean environment (plus ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "hephaestus", *map(str, args)],
        cwd=cwd,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def http_service(repo: Path, config: Config | None = None, **agent: Any) -> Iterator[Any]:
    """A :class:`Service` on ``repo`` with only its HTTP server running, on a free port.

    A test that needs a cycle runs one with :func:`one_service_cycle`, as the loop would.
    """
    from hephaestus.service.loop import Service

    runner = make_agent(config or make_config(), repo, **agent)
    service = Service(runner, interval=0, host="127.0.0.1", port=0)
    service.http.start()
    try:
        yield service
    finally:
        service.http.stop()
        runner.close()


def one_service_cycle(service: Any) -> None:
    """One cycle of an :func:`http_service` through the service's own loop: the next queued
    objective first, and the monitor told of the result."""
    service.run_one_cycle()


def service_url(service: Any) -> str:
    """The base URL of a running :func:`http_service`."""
    host, port = service.http.address
    return f"http://{host}:{port}"


def serve_command(repo: Path, port: int, *args: str, interval: float = 0.5) -> list[str]:
    """The command line of ``hephaestus serve`` on ``repo``, as an operator types it."""
    command = [sys.executable, "-m", "hephaestus", "serve", "--project", str(repo)]
    return [*command, "--port", str(port), "--interval", str(interval), *args]


@contextmanager
def serve(
    repo: Path,
    port: int,
    log: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    interval: float = 0.5,
) -> Iterator[subprocess.Popen[bytes]]:
    """``hephaestus serve`` on ``repo`` as an operator starts it; SIGTERM (then kill) on exit.

    Output (JSON log lines and the per-cycle lines) goes to ``log``.
    """
    command = serve_command(repo, port, *args, interval=interval)
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=clean_env(env))
    try:
        yield proc
    finally:
        stop_process(proc)


@dataclass
class Served:
    """A running ``hephaestus serve`` on a fresh copy of the sample project."""

    url: str
    repo: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def wait(self, check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
        """:func:`wait_until`, failing with the service's log."""
        return wait_until(check, timeout, what, [self.proc], [self.log])

    def cycles_run(self) -> int:
        import httpx

        return int(httpx.get(f"{self.url}/api/health", timeout=10).json()["cycles_run"])


@contextmanager
def serve_sample(
    root: Path, *, cycles: int = 1, env: Mapping[str, str] | None = None, interval: float = 0.5
) -> Iterator[Served]:
    """:func:`serve` on the sample project under ``root``, once ``cycles`` cycles have run."""
    repo = make_target_repo(root / "target", sample=True)
    port, log = free_port(), root / "serve.log"
    with serve(repo, port, log, env=env, interval=interval) as proc:
        served = Served(f"http://127.0.0.1:{port}", repo, proc, log)
        served.wait(lambda: served.cycles_run() >= cycles, f"{cycles} cycle(s)")
        yield served


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM, and SIGKILL after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    procs: Iterable[subprocess.Popen[Any]] = (),
    logs: Iterable[Path] = (),
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the logs' tails otherwise.

    A transport error counts as "not yet"; a process in ``procs`` that exits fails at once.
    """
    import httpx
    import pytest

    def tails() -> str:
        return "\n".join(f"--- {p} ---\n{p.read_text()[-2500:]}" for p in logs if p.exists())

    def checked() -> Any:
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(
                    f"{proc.args} exited with {proc.returncode} waiting for {what}\n{tails()}"
                )
        try:
            return check()
        except httpx.TransportError:
            return None

    found = eventually(checked, timeout, interval=0.2)
    if not found:
        pytest.fail(f"timed out after {timeout}s waiting for {what}\n{tails()}")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- a scripted OpenAI-compatible server -----------------------------------------------------
@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: Any = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


def chat_reply(
    content: str,
    model: str = "test-model",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
    finish_reason: str | None = "stop",
) -> Reply:
    """A successful Chat Completions answer carrying ``content``."""
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


_TASK_ROLES = {
    "next_objective": Role.BRAIN,
    "patch_plan": Role.ARCHITECT,
    "review": Role.CODE_REVIEWER,
    "strategy": Role.MAESTRO,
}


def model_like_reply(request: dict[str, Any], seed: int = 0) -> Reply:
    """Answer an agent prompt the way a model would, using the offline engine's logic."""
    messages = [Message(m["role"], m["content"]) for m in request["messages"]]
    role = _TASK_ROLES[extract_json(messages[-1].content)["task"]]
    completion = OfflineProvider(seed).chat(role, request["model"], messages)
    return chat_reply(
        "Here is my answer:\n```json\n" + completion.text + "\n```", model=request["model"]
    )


def rejects_response_format(
    *kinds: str,
    status: int = 400,
    then: Callable[[dict[str, Any]], Reply] = model_like_reply,
) -> Callable[[dict[str, Any]], Reply]:
    """A server default that refuses ``response_format`` types ``kinds``, as servers do.

    The refusal names ``response_format`` in an OpenAI-style error body; any other request
    (no ``response_format``, or a type not in ``kinds``) is answered by ``then``.
    """

    def answer(request: dict[str, Any]) -> Reply:
        kind = (request.get("response_format") or {}).get("type")
        if kind in kinds:
            return Reply(
                status=status,
                body={
                    "error": {
                        "message": f"response_format type {kind!r} is not supported",
                        "type": "invalid_request_error",
                        "param": "response_format",
                    }
                },
            )
        return then(request)

    return answer


@dataclass
class Request:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None

    @property
    def response_format(self) -> dict[str, Any] | None:
        """The ``response_format`` the request asked for, if any."""
        return (self.body or {}).get("response_format")


class ScriptedLLMServer:
    """A real HTTP server answering ``POST .../chat/completions`` from a script.

    ``script`` is consumed in order; when empty, ``default(request_body)`` answers.
    """

    def __init__(self, default: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self.requests: list[Request] = []
        self.answered = 0  # replies fully sent (a delayed one counts once its delay is over)
        self._script: list[Reply | Callable[[dict[str, Any]], Reply]] = []
        self._default = default or (lambda _body: Reply(status=500, body={"error": "unscripted"}))
        self._lock = threading.Lock()
        server = self
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(server))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, replies: Iterable[Reply | Callable[[dict[str, Any]], Reply]]) -> None:
        with self._lock:
            self._script.extend(replies)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            item = self._script.pop(0) if self._script else self._default
        return item(body) if callable(item) else item

    def models_requested(self) -> list[str]:
        return [r.body["model"] for r in self.requests if r.body]

    def __enter__(self) -> ScriptedLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler_class(server: ScriptedLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # silence stderr
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            server.requests.append(Request(self.path, dict(self.headers), body))
            reply = server.next_reply(body or {})
            if reply.delay:
                time.sleep(reply.delay)
            payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass
            server.answered += 1

    return Handler


PRICING = "inventory/pricing.py"  # a module of the sample project that scripted plans edit


def plan(*patches: dict[str, Any]) -> str:
    """The architect's answer carrying ``patches``."""
    return json.dumps({"analysis": "scripted", "patches_to_apply": list(patches)})


def replace(block: str, content: str, path: str = PRICING) -> dict[str, Any]:
    """One REPLACE patch."""
    return {
        "file_path": path,
        "operation": "REPLACE",
        "block_to_replace": block,
        "content": content,
    }


def objective(text: str = "Improve pricing", path: str = PRICING) -> str:
    """The brain's answer proposing ``text`` for ``path``."""
    return json.dumps({"objective": text, "kind": "freeform", "file_path": path})


def task_of(request: dict[str, Any]) -> str:
    """The agent task (next_objective, patch_plan, review, strategy) of a chat request."""
    return extract_json(request["messages"][-1]["content"])["task"]


def answer_by_task(
    **answers: str | Reply | Callable[[dict[str, Any]], Reply],
) -> Callable[[dict[str, Any]], Reply]:
    """A server default that answers some tasks as scripted and the rest like a model.

    ``answers`` maps a task name to the model's text (wrapped in a chat reply), a
    :class:`Reply`, or a function of the request.
    """

    def answer(request: dict[str, Any]) -> Reply:
        scripted = answers.get(task_of(request))
        if scripted is None:
            return model_like_reply(request)
        if isinstance(scripted, str):
            return chat_reply(scripted, model=request["model"])
        return scripted(request) if callable(scripted) else scripted

    return answer


def openai_config(
    server: ScriptedLLMServer,
    models: Mapping[str, list[str]] | None = None,
    **sections: Mapping[str, Any],
) -> Config:
    """A config using the openai provider against ``server`` (no API key)."""
    roles = ("brain", "architect", "code_reviewer", "maestro")
    llm = {
        "base_url": server.base_url,
        "api_key_env": "",
        "request_timeout": 5.0,
        "local_server": "no",  # the scripted server on 127.0.0.1 stands in for a remote API
        "models": {role: list((models or {}).get(role, ["model-a"])) for role in roles},
        **sections.pop("llm", {}),
    }
    resilience = {
        "retry_wait_initial": 0.01,
        "retry_wait_max": 0.05,
        "retry_wait_jitter": 0.0,
        **sections.pop("resilience", {}),
    }
    return make_config(
        agent={"provider": "openai", **sections.pop("agent", {})},
        llm=llm,
        resilience=resilience,
        **sections,
    )
