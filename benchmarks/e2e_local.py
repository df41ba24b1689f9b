"""End-to-end run against a real local model: llama-cpp-python's server and a small GGUF.

`make e2e-local` installs the server and the model, then runs this script, which

1. starts ``python -m llama_cpp.server`` on a free port of 127.0.0.1 with one thread,
2. copies the bundled sample into a fresh git repository,
3. runs ``hephaestus run --provider openai --cycles N`` on it with default structured
   outputs (``json_schema``; llama-cpp-python refuses that mode, so the agent falls back to
   ``json_object`` with the schema, which the server enforces with a grammar),
4. reads the cycles back from memory and the model calls from the local span file, and
5. prints one table of cycles and one of model calls (time, tokens, finish reason, the
   structured-output mode, whether the answer was schema-valid JSON), and writes them to
   ``results.json`` in the work directory.

It exits 1 when a complete answer (finish reason ``stop``) was not schema-valid JSON: with
structured outputs on, every answer must be. A tiny model failing review or the tests is an
honest outcome, not a failure of this run. It is not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from hephaestus.sample import create_demo_repo
from hephaestus.telemetry.spanfile import read_span_file

ROOT_SPAN = "invoke_workflow hephaestus.cycle"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="hephaestus-e2e-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start_server(args, port, workdir / "server.log")
    try:
        wait_until_ready(server, port, workdir / "server.log", args.startup_timeout)
        repo = create_demo_repo(workdir / "sample")
        config = write_config(args, port, workdir)
        started = time.monotonic()
        run = run_agent(args, repo, config, workdir)
        elapsed = time.monotonic() - started
    finally:
        stop_server(server)
    cycles = read_cycles(repo, config)
    calls = read_calls(workdir / "traces.jsonl")
    results = {
        "model": args.model.name,
        "n_ctx": args.n_ctx,
        "max_tokens": args.max_tokens,
        "threads": 1,
        "exit_code": run.returncode,
        "wall_seconds": round(elapsed, 1),
        "cycles": cycles,
        "calls": calls,
    }
    (workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(f"\nwork directory: {workdir} (results.json, server.log, agent.log, traces.jsonl)")
    return verdict(results)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-python", type=Path, required=True, help="python with llama_cpp")
    parser.add_argument("--model", type=Path, required=True, help="the .gguf file")
    parser.add_argument("--alias", default="smollm2", help="model name the server answers to")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--n-ctx", type=int, default=4096, help="server context = context_tokens")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--request-timeout", type=float, default=600.0)
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(args: argparse.Namespace, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        str(args.server_python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(args.model),
        "--model_alias",
        args.alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(args.n_ctx),
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
    ]
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def wait_until_ready(server: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the model server exited ({server.returncode}):\n{tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the model server did not answer within {timeout:.0f}s:\n{tail(log)}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def write_config(args: argparse.Namespace, port: int, workdir: Path) -> Path:
    roles = ("brain", "architect", "code_reviewer", "maestro")
    timeout = args.request_timeout
    text = "\n".join(
        [
            "[agent]",
            'provider = "openai"',
            "[llm]",
            f'base_url = "http://127.0.0.1:{port}/v1"',
            'api_key_env = ""',
            f"request_timeout = {timeout}",
            f"max_tokens = {args.max_tokens}",
            f"context_tokens = {args.n_ctx}",
            "[llm.models]",
            *(f'{role} = ["{args.alias}"]' for role in roles),
            "[resilience]",
            f"retry_timeout = {2 * timeout + 10}",
            f"stage_timeout = {2 * timeout + 60}",
            f"cycle_timeout = {8 * timeout}",
            "[telemetry]",
            f'traces_file = "{workdir / "traces.jsonl"}"',
            "[logging]",
            'format = "json"',
            "",
        ]
    )
    path = workdir / "hephaestus.toml"
    path.write_text(text)
    return path


def run_agent(
    args: argparse.Namespace, repo: Path, config: Path, workdir: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEPHAESTUS_", "OTEL_"))}
    command = [sys.executable, "-m", "hephaestus", "run", "--provider", "openai"]
    command += ["--cycles", str(args.cycles), "--project", str(repo), "--config", str(config)]
    print("$", " ".join(command), flush=True)
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    (workdir / "agent.log").write_text(run.stderr)
    print(run.stdout)
    return run


def read_cycles(repo: Path, config: Path) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "hephaestus", "history", "--json", "--limit", "100"]
    command += ["--project", str(repo), "--config", str(config)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    keep = ("cycle_number", "trace_id", "outcome", "reason", "detail", "llm_calls")
    return sorted(
        ({k: row.get(k) for k in keep} | {"seconds": seconds(row)} for row in rows),
        key=lambda row: row["cycle_number"],
    )


def seconds(row: dict[str, Any]) -> float:
    return round((row.get("finished_at") or 0) - (row.get("started_at") or 0), 1)


def read_calls(span_file: Path) -> list[dict[str, Any]]:
    spans = list(read_span_file(span_file))
    by_id = {s["span_id"]: s for s in spans}
    cycle_of = {
        s["trace_id"]: s["attributes"].get("hephaestus.cycle.number")
        for s in spans
        if s["name"] == ROOT_SPAN
    }
    calls = []
    for span in sorted(spans, key=lambda s: s["start_ns"]):
        if not span["name"].startswith("chat "):
            continue
        stage = by_id.get(span["parent_span_id"] or "", {})
        calls.append(call_row(span, stage, cycle_of.get(span["trace_id"])))
    return calls


def call_row(span: dict[str, Any], stage: dict[str, Any], cycle: int | None) -> dict[str, Any]:
    attributes, stage_attributes = span["attributes"], stage.get("attributes", {})
    reasons = attributes.get("gen_ai.response.finish_reasons") or [None]
    return {
        "cycle": cycle,
        "role": stage_attributes.get("gen_ai.agent.name"),
        "seconds": round((span["end_ns"] - span["start_ns"]) / 1e9, 1),
        "estimated_prompt_tokens": stage_attributes.get("hephaestus.prompt.estimated_tokens"),
        "trimmed_files": len(stage_attributes.get("hephaestus.prompt.trimmed_files") or []),
        "input_tokens": attributes.get("gen_ai.usage.input_tokens"),
        "output_tokens": attributes.get("gen_ai.usage.output_tokens"),
        "finish_reason": reasons[0],
        "response_format": attributes.get("hephaestus.response_format"),
        "fallbacks": sum(e["name"] == "structured_output.fallback" for e in span["events"]),
        "valid_json": attributes.get("hephaestus.answer.valid"),
        "error_type": attributes.get("error.type"),
    }


def render(results: dict[str, Any]) -> str:
    lines = [
        f"model {results['model']}, n_ctx {results['n_ctx']}, max_tokens "
        f"{results['max_tokens']}, 1 thread; hephaestus exit code {results['exit_code']}, "
        f"{results['wall_seconds']} s",
        "",
        "| cycle | outcome | reason | seconds | detail |",
        "|---|---|---|---|---|",
    ]
    for c in results["cycles"]:
        detail = " ".join(str(c["detail"] or "").split())[:110].replace("|", "/")
        lines.append(
            f"| {c['cycle_number']} | {c['outcome']} | {c['reason']} | {c['seconds']} | {detail} |"
        )
    lines += [
        "",
        "| cycle | role | seconds | est. prompt | tokens in | tokens out | finish | format "
        "| valid JSON |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in results["calls"]:
        estimate = c["estimated_prompt_tokens"]
        if c["trimmed_files"]:
            plural = "s" if c["trimmed_files"] > 1 else ""
            estimate = f"{estimate} ({c['trimmed_files']} file{plural} trimmed)"
        fmt = c["response_format"] or "-"
        if c["fallbacks"]:
            fmt += f" (after {c['fallbacks']} refusal)"
        lines.append(
            f"| {c['cycle']} | {c['role']} | {c['seconds']} | {estimate} | {c['input_tokens']} "
            f"| {c['output_tokens']} | {c['finish_reason']} | {fmt} | {validity(c)} |"
        )
    return "\n".join(lines)


def validity(call: dict[str, Any]) -> str:
    if call["valid_json"] is True:
        return "yes"
    if call["valid_json"] is False:
        return f"no ({call['error_type']})"
    return f"- ({call['error_type']})" if call["error_type"] else "-"


def verdict(results: dict[str, Any]) -> int:
    complete = [c for c in results["calls"] if c["finish_reason"] == "stop"]
    invalid = [c for c in complete if c["valid_json"] is not True]
    print(
        f"{len(results['calls'])} model calls; {len(complete)} complete answers, "
        f"{len(complete) - len(invalid)} of them schema-valid JSON"
    )
    if results["exit_code"] != 0 or invalid or not complete:
        return 1
    return 0


if __name__ == "__main__":
    if shutil.which("git") is None:
        raise SystemExit("git is needed")
    sys.exit(main())
