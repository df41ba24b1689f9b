"""Terminal rendering with rich: live cycle progress, summary and history tables, config."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.tree import Tree

from hephaestus.agent import CycleResult, Stage

OUTCOME_STYLES = {"succeeded": "green", "rejected": "yellow", "failed": "red", "aborted": "magenta"}


class CycleProgress:
    """A live line per run: ``cycle 3/10 · validate`` with a spinner and elapsed time."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # run only

        self._total = total
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("starting", total=total)
        self._done = 0

    def __enter__(self) -> CycleProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def on_stage(self, result: CycleResult, stage: Stage) -> None:
        """Show the stage the current cycle has reached."""
        self._progress.update(
            self._task, description=(f"cycle {self._done + 1}/{self._total} · {stage.value}")
        )

    def backing_off(self, seconds: float) -> None:
        """Say that the next cycle waits because the last ones failed."""
        self._progress.update(
            self._task,
            description=(
                f"cycle {self._done + 1}/{self._total} · backing off {seconds:g}s after failures"
            ),
        )

    def cycle_done(self, result: CycleResult) -> None:
        """Advance by one finished cycle and print its one-line result."""
        self._done += 1
        self._progress.update(self._task, advance=1)
        style = OUTCOME_STYLES.get(result.outcome.value, "")
        self._progress.console.print(
            f"cycle {result.cycle_number}: [{style}]{result.outcome.value}[/] "
            f"({result.reason.value}) in {result.duration:.2f}s",
            highlight=False,
        )


def summary_table(results: Iterable[CycleResult]) -> Table:
    """One row per cycle: outcome, reason, duration, commit, objective."""
    table = Table(title="Hephaestus cycles", title_justify="left")
    for column in ("#", "outcome", "reason", "duration", "commit", "objective"):
        table.add_column(
            column,
            overflow="fold" if column == "objective" else "ellipsis",
            justify="right" if column in ("#", "duration") else "left",
        )
    for r in results:
        table.add_row(
            str(r.cycle_number),
            _styled(r.outcome.value),
            r.reason.value,
            f"{r.duration:.2f}s",
            (r.commit_sha or "-")[:10],
            r.objective.text if r.objective else "-",
        )
    return table


def history_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    """Recent cycles from memory, newest first, with their correlation and trace ids."""
    table = Table(title="Recent cycles", title_justify="left")
    for column in (
        "#",
        "started",
        "outcome",
        "reason",
        "duration",
        "commit",
        "correlation_id",
        "trace_id",
        "objective",
    ):
        table.add_column(column, overflow="fold" if column == "objective" else "ellipsis")
    for row in rows:
        started = row.get("started_at") or 0
        finished = row.get("finished_at") or started
        table.add_row(
            str(row["cycle_number"]),
            _local(started),
            _styled(row.get("outcome") or "running"),
            row.get("reason") or "-",
            f"{finished - started:.2f}s",
            (row.get("commit_sha") or "-")[:10],
            row["correlation_id"],
            row.get("trace_id") or "-",
            row.get("objective") or "-",
        )
    return table


def _styled(outcome: str) -> str:
    style = OUTCOME_STYLES.get(outcome)
    return f"[{style}]{outcome}[/]" if style else outcome


def _local(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else "-"


_MAX_TEST_SPANS = 5


def trace_tree(spans: Sequence[Mapping[str, Any]]) -> Tree:
    """The span tree of one trace: name, duration, status and key attributes per span."""
    by_parent: dict[str | None, list[Mapping[str, Any]]] = {}
    ids = {s["span_id"] for s in spans}
    for span in sorted(spans, key=lambda s: s["start_ns"]):
        parent = span.get("parent_span_id")
        by_parent.setdefault(parent if parent in ids else None, []).append(span)
    roots = by_parent.get(None, [])
    first = roots[0] if roots else spans[0]
    correlation = first.get("attributes", {}).get("hephaestus.correlation_id", "-")
    tree = Tree(f"trace {first['trace_id']}  correlation_id={correlation}")
    for root in roots:
        _add_span(tree, root, by_parent)
    return tree


def _add_span(parent: Tree, span: Mapping[str, Any], children: dict) -> None:
    from hephaestus.telemetry.trace_lookup import KEY_ATTRIBUTES  # not for `history`

    duration_ms = (span["end_ns"] - span["start_ns"]) / 1e6
    status = span.get("status", "UNSET")
    style = "red" if status == "ERROR" else ""
    attributes = span.get("attributes", {})
    shown = " ".join(
        f"{k.split('.')[-1] if k.startswith('hephaestus.') else k}={attributes[k]}"
        for k in KEY_ATTRIBUTES
        if k in attributes
    )
    label = f"{span['name']}  {duration_ms:.1f} ms"
    label += f"  [{style}]{status}[/]" if style else ""
    node = parent.add(f"{label}  [dim]{shown}[/]" if shown else label)
    kids = children.get(span["span_id"], [])
    tests = [k for k in kids if k["name"] == "pytest test"]
    if len(tests) > _MAX_TEST_SPANS:  # show failing tests only, and count the rest
        kids = [
            k
            for k in kids
            if k not in tests or k.get("attributes", {}).get("test.case.result.status") == "fail"
        ]
        node.add(f"[dim]… {len(tests) - sum(k in tests for k in kids)} passing tests[/]")
    for child in kids:
        _add_span(node, child, children)


STATE_STYLES = {"ok": "green", "breach": "bold red", "no_data": "dim"}


def kpi_table(kpis: Iterable[Mapping[str, Any]], title: str = "KPIs") -> Table:
    """One row per KPI: value, target, state."""
    from hephaestus.performance.kpis import format_target, format_value  # not for `history`

    table = Table(title=title, title_justify="left")
    for column in ("KPI", "value", "target", "state", "basis"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for kpi in kpis:
        state = kpi["state"]
        table.add_row(
            kpi["title"],
            format_value(dict(kpi)),
            format_target(dict(kpi)),
            f"[{STATE_STYLES[state]}]{state.replace('_', ' ')}[/]",
            f"[dim]{kpi['basis']}[/]",
        )
    return table


def status_view(status: Mapping[str, Any]) -> Group:
    """``hephaestus status``: health line, KPI table, open breakers, last failures."""
    verdict = "[green]healthy[/]" if status["healthy"] else "[bold red]breach[/]"
    parts: list[Any] = [
        f"{status['url']}: {verdict} · status {status['status']} · "
        f"{'ready' if status['ready'] else 'not ready'} · v{status['version']} · "
        f"up {int(status['uptime_seconds'] or 0)} s · {status['cycles_run']} cycles run · "
        f"queue {status['queue_depth']}",
        kpi_table(status["kpis"]),
    ]
    if status["open_breakers"]:
        parts.append(f"[red]open breakers:[/] {', '.join(status['open_breakers'])}")
    for breach in status["breaches"]:
        parts.append(f"[red]✗[/] {breach}")
    if status["last_failures"]:
        failures = Table(title="Last failures", title_justify="left")
        for column in ("#", "reason", "correlation_id", "objective"):
            failures.add_column(column, overflow="fold" if column == "objective" else "ellipsis")
        for cycle in status["last_failures"]:
            failures.add_row(
                str(cycle["cycle_number"]),
                cycle["reason"],
                cycle["correlation_id"],
                cycle["objective"] or "-",
            )
        parts.append(failures)
    return Group(*parts)


def report_view(analysis: Mapping[str, Any]) -> Group:
    """``hephaestus report``: score, KPIs, bottlenecks and recommendations."""
    overall = analysis["overall_performance"]
    if overall["score"] is None:
        headline = f"[yellow]not enough data[/]: {overall['detail']}"
    else:
        headline = (
            f"score [bold]{overall['score']:.1f}[/]/100 · {overall['kpis_met']} of "
            f"{overall['kpis_measured']} measured KPIs on target · {overall['cycles']} cycles"
        )
    parts: list[Any] = [headline, kpi_table(overall["kpis"])]
    if analysis["bottlenecks"]:
        table = Table(title="Bottlenecks", title_justify="left")
        for column in ("kind", "name", "share", "p95", "budget"):
            table.add_column(column, justify="right" if column in ("share", "p95") else "left")
        for b in analysis["bottlenecks"]:
            p95 = "-" if b["p95_s"] is None else f"{b['p95_s']:.2f} s"
            over = "[red]over 5 s[/]" if b["over_budget"] else "within 5 s"
            table.add_row(b["kind"], b["name"], f"{b['share'] * 100:.0f} %", p95, over)
        parts.append(table)
    for recommendation in analysis["recommendations"]:
        parts.append(f"• {recommendation['message']}")
    parts.append(f"[dim]source: {overall['source']}[/]")
    for note in analysis["measurements"].get("notes", []):
        parts.append(f"[dim]note: {note}[/]")
    return Group(*parts)
