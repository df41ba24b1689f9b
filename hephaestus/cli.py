"""The ``hephaestus`` command: parses arguments, builds objects, prints. No business logic."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hephaestus.cli_args import build_parser
from hephaestus.config import Config, ConfigError, describe, load_config, to_toml

if TYPE_CHECKING:  # the commands import what they use: `--help` starts without them
    from rich.console import Console

    from hephaestus.agent.models import CycleResult

EXIT_USAGE = 2
EXIT_RUNTIME = 1
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Arguments that cannot work together; exit code 2."""


def _console() -> Console:
    """Rich's console; piped output keeps whole ids instead of cutting lines at 80 columns."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)


def _load(args: argparse.Namespace) -> Config:
    from hephaestus.telemetry.logs import configure_logging

    config = load_config(args.config)
    provider = getattr(args, "provider", None)
    if provider:
        config = config.with_overrides(agent={"provider": provider})
    configure_logging(config.logging.level, config.logging.format, stream=_Stderr())
    return config


class _Stderr:
    """Writes to whatever ``sys.stderr`` is now, so rich's live display can redirect logs."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _run_cycles(
    config: Config,
    project: Path,
    cycles: int,
    objective: str | None,
    correlation_id: str | None,
    console: Console,
) -> int:
    from hephaestus.agent.build import build_runner
    from hephaestus.display import CycleProgress, summary_table
    from hephaestus.service.cycles import CycleRequest, run_cycles
    from hephaestus.service.shutdown import GracefulShutdown

    results: list[CycleResult] = []
    with CycleProgress(console, cycles) as progress:
        runner = build_runner(config, project, on_stage=progress.on_stage)
        shutdown = GracefulShutdown(runner, config.resilience.shutdown_grace)
        shutdown.install()

        def finished(result: CycleResult) -> None:
            results.append(result)
            progress.cycle_done(result)

        def back_off(pause: float) -> None:
            if pause:
                progress.backing_off(pause)
                shutdown.event.wait(pause)

        try:
            run_cycles(
                runner,
                shutdown.event,
                next_request=lambda n: CycleRequest(objective if n == 0 else None, correlation_id),
                on_cycle=finished,
                wait=back_off,
                cycles=cycles,
            )
        finally:
            shutdown.uninstall()
            runner.close()
    console.print(summary_table(results))
    succeeded = sum(r.outcome.value == "succeeded" for r in results)
    console.print(
        f"{succeeded}/{len(results)} cycles succeeded; history: "
        f"hephaestus history --project {runner.repo.root}",
        highlight=False,
    )
    if shutdown.event.is_set():
        console.print(f"stopped early by {shutdown.signal_name}", highlight=False)
        return EXIT_INTERRUPTED
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``hephaestus run``."""
    from hephaestus.agent.models import check_correlation_id

    if args.correlation_id is not None and args.cycles != 1:
        raise UsageError("--correlation-id names one cycle; use it with --cycles 1")
    if args.correlation_id is not None:
        try:
            check_correlation_id(args.correlation_id)
        except ValueError as exc:
            raise UsageError(f"--correlation-id: {exc}") from None
    config = _load(args)
    return _run_cycles(
        config, args.project, args.cycles, args.objective, args.correlation_id, _console()
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """``hephaestus demo``."""
    from hephaestus.sample import create_demo_repo

    console = _console()
    config = _load(args)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hephaestus-demo-"))
    repo = create_demo_repo(workdir)
    console.print(f"demo repository: {repo} (provider: {config.agent.provider})", highlight=False)
    code = _run_cycles(config, repo, args.cycles, None, None, console)
    console.print(f"see the commits: git -C {repo} log --oneline", highlight=False)
    return code


def cmd_serve(args: argparse.Namespace) -> int:
    """``hephaestus serve``."""
    from hephaestus.service.loop import serve_forever

    console = _console()
    overrides = {
        key: value
        for key, value in (
            ("interval", args.interval),
            ("host", args.host),
            ("port", args.port),
            ("jaeger_url", args.jaeger_url),
        )
        if value is not None
    }
    config = _load(args)
    if overrides:
        config = config.with_overrides(service=overrides)
    service = config.service

    def report(result: CycleResult) -> None:
        console.print(
            f"cycle {result.cycle_number}: {result.outcome.value} "
            f"({result.reason.value}) in {result.duration:.2f}s "
            f"correlation_id={result.correlation_id}",
            highlight=False,
        )

    return serve_forever(
        config,
        args.project,
        interval=service.interval,
        host=service.host,
        port=service.port,
        on_cycle=report,
    )


def cmd_history(args: argparse.Namespace) -> int:
    """``hephaestus history``."""
    from hephaestus.agent.gitrepo import GitRepo
    from hephaestus.agent.memory import Memory
    from hephaestus.agent.paths import memory_path

    console = _console()
    config = load_config(args.config)
    repo = GitRepo.open(args.project)
    path = memory_path(config, repo)
    if not path.exists():
        console.print(f"no cycles recorded yet ({path} does not exist)", highlight=False)
        return 0
    memory = Memory(path, writable=False)
    try:
        rows = memory.recent(args.limit)
    finally:
        memory.close()
    if args.json:
        for row in rows:
            print(json.dumps(row, default=str))
    else:
        from hephaestus.display import history_table

        console.print(history_table(rows))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``hephaestus status``."""
    from hephaestus.display import status_view
    from hephaestus.service.client import fetch_status

    status = fetch_status(args.url)
    if args.format == "json":
        print(json.dumps(status.to_dict(), indent=2, default=str))
    else:
        _console().print(status_view(status.to_dict()))
    return status.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    """``hephaestus report``."""
    from hephaestus.agent.gitrepo import GitRepo
    from hephaestus.agent.paths import memory_path
    from hephaestus.display import report_view
    from hephaestus.performance import memory_analyzer, prometheus_analyzer
    from hephaestus.performance.report import to_markdown

    if args.prometheus_url:
        analyzer = prometheus_analyzer(args.prometheus_url, args.since)
    else:
        config = load_config(args.config)
        analyzer = memory_analyzer(memory_path(config, GitRepo.open(args.project)), args.since)
    analysis = analyzer.analyze_agent_performance()
    if args.format == "json":
        print(json.dumps(analysis, indent=2, default=str))
    elif args.format == "markdown":
        print(to_markdown(analysis))
    else:
        _console().print(report_view(analysis))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """``hephaestus config show``."""
    shown = describe(load_config(args.config))
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        print(to_toml(shown))
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """``hephaestus trace``."""
    from hephaestus.agent.gitrepo import GitRepo
    from hephaestus.agent.paths import span_file_path
    from hephaestus.display import trace_tree
    from hephaestus.telemetry.trace_lookup import jaeger_trace, local_trace

    if args.jaeger_url:
        spans = jaeger_trace(args.jaeger_url, args.id)
    else:
        config = load_config(args.config)
        spans = local_trace(span_file_path(config, GitRepo.open(args.project)), args.id)
    _console().print(trace_tree(spans))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "demo": cmd_demo,
    "serve": cmd_serve,
    "history": cmd_history,
    "trace": cmd_trace,
    "status": cmd_status,
    "report": cmd_report,
    "config": cmd_config,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hephaestus`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except Exception as exc:
        code = exit_code_of(exc)
        if code is None:
            raise
        print(f"hephaestus: error: {exc}", file=sys.stderr)
        return code


def exit_code_of(exc: Exception) -> int | None:
    """The exit code of an error the command line reports in one line, else ``None``.

    The error classes are imported here, when one is raised, so a command never imports
    modules only to be able to catch their errors.
    """
    from hephaestus.agent.gitrepo import GitError, NotAGitRepository
    from hephaestus.agent.memory import MemoryStoreError
    from hephaestus.agent.recovery import AgentLocked
    from hephaestus.agent.workspace import WorkspaceError
    from hephaestus.performance import PrometheusError
    from hephaestus.service.client import EXIT_UNREACHABLE, ServiceUnreachable
    from hephaestus.service.server import ListenError
    from hephaestus.telemetry.trace_lookup import TraceNotFound

    if isinstance(exc, ServiceUnreachable):
        return EXIT_UNREACHABLE
    usage = (UsageError, ConfigError, NotAGitRepository, FileExistsError, ListenError)
    if isinstance(exc, usage):
        return EXIT_USAGE
    runtime = (MemoryStoreError, WorkspaceError, GitError, FileNotFoundError, TraceNotFound)
    if isinstance(exc, (*runtime, AgentLocked, PrometheusError)):
        return EXIT_RUNTIME
    return None
