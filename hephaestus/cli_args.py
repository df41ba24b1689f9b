"""The ``hephaestus`` command line: every subcommand's arguments, declared in one place."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from hephaestus import __version__


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _common(parser: argparse.ArgumentParser, project: bool = True) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="hephaestus.toml to load (default: $HEPHAESTUS_CONFIG, else built-in defaults)",
    )
    if project:
        parser.add_argument(
            "--project",
            type=Path,
            default=Path("."),
            help="git repository to improve (default: current directory)",
        )


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_run(sub: Subparsers) -> None:
    run = sub.add_parser("run", help="run N improvement cycles against a repository")
    _common(run)
    run.add_argument("--cycles", type=_positive, default=1, help="cycles to run (default 1)")
    run.add_argument("--provider", choices=("offline", "openai"), help="override agent.provider")
    run.add_argument("--objective", help="objective of the first cycle (default: the brain picks)")
    run.add_argument("--correlation-id", help="correlation id of the cycle (needs --cycles 1)")


def _add_demo(sub: Subparsers) -> None:
    demo = sub.add_parser("demo", help="run cycles on a fresh copy of the bundled sample project")
    _common(demo, project=False)
    demo.add_argument("--cycles", type=_positive, default=12, help="cycles to run (default 12)")
    demo.add_argument(
        "--workdir",
        type=Path,
        help="new or empty directory for the demo repo (default: a new temporary directory)",
    )
    demo.add_argument("--provider", choices=("offline", "openai"), help="override agent.provider")


def _add_serve(sub: Subparsers) -> None:
    serve = sub.add_parser("serve", help="run cycles continuously until SIGINT/SIGTERM")
    _common(serve)
    serve.add_argument(
        "--interval",
        type=_non_negative_float,
        default=None,
        help="seconds to wait between cycles (default: service.interval)",
    )
    serve.add_argument(
        "--host", help="bind address of /metrics and the API (default: service.host, 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, help="port of /metrics and the API (default: service.port, 9464)"
    )
    serve.add_argument(
        "--jaeger-url",
        help="Jaeger UI that the trace view links to (default: service.jaeger_url)",
    )


def _add_history_and_trace(sub: Subparsers) -> None:
    history = sub.add_parser("history", help="list recent cycles from memory")
    _common(history)
    history.add_argument("--limit", type=_positive, default=20, help="rows to show (default 20)")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    trace_cmd = sub.add_parser("trace", help="print the span tree of one cycle")
    _common(trace_cmd)
    trace_cmd.add_argument("id", help="correlation id or trace id (or a unique prefix of either)")
    trace_cmd.add_argument(
        "--jaeger-url",
        help="read from Jaeger's API v3 at this URL "
        "(e.g. http://localhost:16686) instead of the local span file",
    )


def _window(text: str) -> float:
    from hephaestus.performance.measurements import parse_window  # not for --help

    try:
        return parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_status_and_report(sub: Subparsers) -> None:
    status = sub.add_parser("status", help="health and KPIs of a running service")
    status.add_argument(
        "--url",
        default="http://127.0.0.1:9464",
        help="the service's address (default http://127.0.0.1:9464)",
    )
    status.add_argument("--format", choices=("table", "json"), default="table")
    report = sub.add_parser("report", help="performance analysis: score, bottlenecks, advice")
    _common(report)
    report.add_argument(
        "--prometheus-url",
        help="read the metrics from this Prometheus server instead of the project's memory",
    )
    report.add_argument(
        "--since", type=_window, default=86400.0, help="window, e.g. 30m, 24h, 7d (default 24h)"
    )
    report.add_argument("--format", choices=("table", "json", "markdown"), default="table")


def _add_config(sub: Subparsers) -> None:
    config = sub.add_parser("config", help="inspect configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_sub.add_parser("show", help="print the effective config, secrets masked")
    _common(show, project=False)
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="hephaestus",
        description=(
            "An observable autonomous agent that improves a git repository in validated cycles."
        ),
    )
    parser.add_argument("--version", action="version", version=f"hephaestus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_run,
        _add_demo,
        _add_serve,
        _add_history_and_trace,
        _add_status_and_report,
        _add_config,
    ):
        add(sub)
    return parser
