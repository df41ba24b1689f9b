"""The analyzer's answer as Markdown, ready to paste into an issue."""

from __future__ import annotations

from typing import Any

from hephaestus.performance.kpis import format_target, format_value

STATE_MARK = {"ok": "✅ ok", "breach": "❌ breach", "no_data": "- no data"}


def format_window(seconds: float) -> str:
    """``86400`` → ``24h``; ``90`` → ``90s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0 and not (unit == "d" and seconds < 172800):
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def to_markdown(analysis: dict[str, Any]) -> str:
    """Score, KPI table, bottlenecks and recommendations as GitHub-flavoured Markdown."""
    overall = analysis["overall_performance"]
    window = format_window(overall["window_s"])
    lines = [f"## Hephaestus performance, last {window}", ""]
    if overall["score"] is None:
        lines += [f"**Not enough data**: {overall['detail']}.", ""]
    else:
        lines += [
            f"**Score {overall['score']:.1f}/100** — {overall['kpis_met']} of "
            f"{overall['kpis_measured']} measured KPIs on target, {overall['cycles']} cycles.",
            "",
        ]
    lines += ["| KPI | value | target | state |", "|---|---|---|---|"]
    for kpi in overall["kpis"]:
        lines.append(
            f"| {kpi['title']} | {format_value(kpi)} | {format_target(kpi)} | "
            f"{STATE_MARK[kpi['state']]} |"
        )
    if analysis["bottlenecks"]:
        lines += ["", "### Bottlenecks", "", "| kind | name | share of cycle time | p95 |"]
        lines.append("|---|---|---|---|")
        for b in analysis["bottlenecks"]:
            p95 = "-" if b["p95_s"] is None else f"{b['p95_s']:.2f} s"
            flag = " (over the 5 s budget)" if b["over_budget"] else ""
            lines.append(f"| {b['kind']} | `{b['name']}` | {b['share']:.0%} | {p95}{flag} |")
    if analysis["recommendations"]:
        lines += ["", "### Recommendations", ""]
        lines += [f"- {r['message']}" for r in analysis["recommendations"]]
    lines += ["", f"<sub>source: {overall['source']}</sub>", ""]
    return "\n".join(lines)
