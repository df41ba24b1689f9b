"""Alert rules: one per KPI breach and failure mode, each with a runbook section.

``critical`` pages a person now; ``warning`` opens a ticket; ``Watchdog`` always fires so
that a silent alerting pipeline is itself noticed downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hephaestus.observability import recording as rec
from hephaestus.observability.kpis import SLO, SLO_PERIOD, SLOS, TARGETS, BurnWindow
from hephaestus.observability.promql import number, selector

RUNBOOK = "docs/runbooks.md"
"""Default base of ``runbook_url``; ``--runbook-url`` points it at the hosted docs."""
WATCHDOG = "Watchdog"
INTERNAL_ERROR = 'reason="internal_error"'


@dataclass(frozen=True)
class Alert:
    """One alerting rule; ``description`` is a Prometheus template."""

    name: str
    expr: str
    severity: str
    summary: str
    description: str
    duration: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def rule(self, runbook: str = RUNBOOK) -> dict[str, object]:
        """The rule as Prometheus reads it, ``runbook_url`` pointing at its section."""
        rule: dict[str, object] = {"alert": self.name, "expr": self.expr}
        if self.duration:
            rule["for"] = self.duration
        rule["labels"] = {"severity": self.severity, **self.labels}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{runbook}#{self.name.lower()}",
        }
        return rule


def _burn_alert(slo: SLO, window: BurnWindow) -> Alert:
    threshold = number(window.factor)
    expr = (
        f"{rec.burn_rate(slo, window.long)} > {threshold}\n"
        f"and\n{rec.burn_rate(slo, window.short)} > {threshold}"
    )
    share = number(slo.error_threshold(window) * 100)
    tier = "pages" if window.severity == "critical" else "opens a ticket"
    description = (
        f"{{{{ $labels.instance }}}} is burning its {number(slo.objective * 100)} % "
        f'{slo.title.lower()} error budget {{{{ $value | printf "%.1f" }}}}x as fast as '
        f"allowed over the last {window.long}, and over {threshold}x in the last "
        f"{window.short} (more than {share} % of {slo.bad_events}). At {threshold}x, "
        f"{window.budget_spent() * 100:.2g} % of the {SLO_PERIOD} budget goes in "
        f"{window.long}: this {tier}."
    )
    if slo.min_events:
        expr += f"\nand\n{rec.cycles_increase(window.long)} >= {slo.min_events}"
        description += f" Only counted once {slo.min_events} cycles finished in {window.long}."
    return Alert(
        slo.alert,
        expr,
        window.severity,
        f"Hephaestus is burning its {slo.title.lower()} error budget too fast",
        description,
        labels={"long_window": window.long, "short_window": window.short},
    )


def slo_alerts() -> list[Alert]:
    """Multi-window, multi-burn-rate alerts on the success and availability SLOs."""
    return [_burn_alert(slo, window) for slo in SLOS for window in slo.windows]


def _down_alert() -> Alert:
    return Alert(
        "HephaestusDown",
        f"{selector('up')} == 0\nor\nabsent({selector('up')})",
        "critical",
        "Hephaestus is down",
        "{{ with $labels.instance }}Prometheus could not scrape {{ . }} (up = {{ $value }})"
        "{{ else }}Prometheus has no target{{ end }} for job {{ $labels.job }} for over a "
        "minute: the agent is not running, not listening, not reachable or not discovered.",
        duration="1m",
    )


def _kpi_alerts() -> list[Alert]:
    return [
        Alert(
            "HephaestusAgentResponseSlow",
            f"{rec.AGENT_P95} > {number(TARGETS.agent_response_p95_seconds)}",
            "warning",
            "An agent of Hephaestus answers slowly",
            "The p95 response time of the {{ $labels.agent }} agent on {{ $labels.instance }} "
            "is {{ $value | humanizeDuration }} over the last 5 minutes (objective: under "
            f"{number(TARGETS.agent_response_p95_seconds)}s).",
            duration="10m",
        ),
        Alert(
            "HephaestusThroughputLow",
            f"{rec.OBJECTIVES_PER_DAY} < {number(TARGETS.objectives_per_day)}\n"
            f"and on (job, instance)\n{selector('up')} offset 1d",
            "warning",
            "Hephaestus works through too few objectives",
            '{{ $labels.instance }} finished {{ $value | printf "%.0f" }} cycles in the '
            f"last 24 hours (objective: at least {number(TARGETS.objectives_per_day)}).",
            duration="15m",
        ),
        Alert(
            "HephaestusRecoverySlow",
            f"{rec.MTTR} > {number(TARGETS.mttr_seconds)}",
            "warning",
            "Hephaestus takes too long to recover from failed cycles",
            "The mean time to recovery of {{ $labels.instance }} over the last 24 hours is "
            "{{ $value | humanizeDuration }} (objective: under "
            f"{number(TARGETS.mttr_seconds)}s).",
        ),
    ]


def _failure_alerts() -> list[Alert]:
    cycles = "hephaestus_cycles_total"
    return [
        Alert(
            "HephaestusInternalErrors",
            f"sum by (job, instance) "
            f"(increase({selector(cycles, INTERNAL_ERROR)}[15m])) "
            f"> {number(TARGETS.internal_errors)}",
            "critical",
            "Hephaestus hit an internal error",
            '{{ $value | printf "%.0f" }} cycle(s) on {{ $labels.instance }} ended with '
            "internal_error in the last 15 minutes: a bug in the agent, not in the model or "
            "the repository.",
        ),
        Alert(
            "HephaestusStalled",
            f"sum by (job, instance) (increase({selector(cycles)}[{TARGETS.stalled_after}])) "
            f"== 0\nand on (job, instance)\n{selector('up')} == 1",
            "critical",
            "Hephaestus is up but finishes no cycle",
            "{{ $labels.instance }} answers scrapes but finished {{ $value }} cycles in the "
            f"last {TARGETS.stalled_after}: a cycle hangs or the loop stopped.",
            duration="5m",
        ),
    ]


def _dependency_alerts() -> list[Alert]:
    state = selector("hephaestus_circuit_breaker_state", 'state="closed"')
    opened = selector("hephaestus_circuit_breaker_transitions_total", 'to_state="open"')
    exports = selector("hephaestus_telemetry_export_failures_total")
    return [
        Alert(
            "HephaestusCircuitBreakerOpen",
            f"sum by (job, instance, breaker) (increase({opened}[15m]))\n"
            f"and on (job, instance, breaker)\n"
            f"max by (job, instance, breaker) ({state}) == 0",
            "warning",
            "A circuit breaker of Hephaestus stays open",
            "Circuit breaker {{ $labels.breaker }} on {{ $labels.instance }} has not closed for "
            '5 minutes and opened {{ $value | printf "%.0f" }} time(s) in the last 15: its '
            "model is skipped for the fallbacks, or its role fails fast (circuit_open).",
            duration="5m",
        ),
        Alert(
            "HephaestusRetryStorm",
            f"{rec.RETRIES_PER_CALL} > 0.5",
            "warning",
            "Hephaestus retries many model calls",
            '{{ $labels.instance }} made {{ $value | printf "%.2f" }} retries per model call '
            "over the last 5 minutes: the model endpoint is failing or rate limiting.",
            duration="10m",
        ),
        Alert(
            "HephaestusLLMErrorsHigh",
            f"{rec.LLM_ERROR_RATIO} > 0.1",
            "warning",
            "Many model calls of Hephaestus fail",
            "{{ $value | humanizePercentage }} of the calls to {{ $labels.gen_ai_request_model }}"
            " ({{ $labels.gen_ai_provider_name }}) from {{ $labels.instance }} failed after "
            "retries over the last 5 minutes (threshold: 10 %).",
            duration="5m",
        ),
        Alert(
            "HephaestusTelemetryExportFailing",
            f"sum by (job, instance, signal) (increase({exports}[10m])) > 0",
            "warning",
            "Hephaestus cannot export its telemetry",
            '{{ $labels.instance }} failed {{ $value | printf "%.0f" }} {{ $labels.signal }} '
            "export(s) in the last 10 minutes: the collector is down or unreachable, and "
            "those spans are lost (cycles are not slowed).",
            duration="10m",
        ),
    ]


def watchdog() -> Alert:
    """Always firing: Alertmanager sends it to a heartbeat receiver that alarms on silence."""
    return Alert(
        WATCHDOG,
        "vector(1)",
        "none",
        "The alerting pipeline is alive",
        "Always firing while Prometheus evaluates the Hephaestus rules and reaches "
        "Alertmanager (value {{ $value }}). The heartbeat receiver must alarm when it "
        "stops arriving.",
    )


def all_alerts() -> list[Alert]:
    """Every alerting rule, in file order."""
    return [
        _down_alert(),
        *slo_alerts(),
        *_kpi_alerts(),
        *_failure_alerts(),
        *_dependency_alerts(),
        watchdog(),
    ]


def groups(runbook: str = RUNBOOK) -> list[dict[str, object]]:
    """The alerting rule groups."""
    return [
        {
            "name": "hephaestus.alerts",
            "rules": [alert.rule(runbook) for alert in all_alerts() if alert.name != WATCHDOG],
        },
        {"name": "hephaestus.meta", "rules": [watchdog().rule(runbook)]},
    ]
