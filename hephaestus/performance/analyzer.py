"""PerformanceAnalyzer: a score, the bottlenecks and what to change, all from measurements.

Nothing here is a placeholder: the score is the formula of :mod:`hephaestus.performance.kpis`,
a bottleneck is a stage or model with a large share of cycle time or a p95 over the 5 s
budget, and each recommendation quotes the measurement that triggered it. With fewer than
:data:`~hephaestus.performance.kpis.MIN_CYCLES` cycles the answer is "not enough data".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hephaestus.agent.models import AGENT_OF_STAGE
from hephaestus.performance.kpis import AGENT_BUDGET_S, MIN_CYCLES, evaluate, overall_score
from hephaestus.performance.measurements import Measurements, TimeStat

BOTTLENECK_SHARE = 0.25  # of all cycle time
LLM_SHARE = 0.5
VALIDATION_SHARE = 0.4
REJECTED_SHARE = 0.5
RETRY_RATIO = 0.1  # retries per model call
FAILURE_ADVICE = {
    "llm_error": "check the provider's status and add fallback models in llm.models",
    "invalid_plan": "the architect's plans do not parse or do not apply; give that role a "
    "stronger model",
    "patch_conflict": "plans target text that is not in the file; give the architect a "
    "stronger model or raise agent.max_prompt_source_bytes so it sees the code",
    "unsafe_path": "plans name paths outside the repository; the model is unreliable",
    "syntax_error": "patches break the syntax; give the architect a stronger model",
    "tests_failed": "patches break the project's tests; give the architect a stronger model "
    "or review plans always (agent.review_mode = always)",
    "timeout": "stages run out of time; raise resilience.stage_timeout or "
    "validation.pytest_timeout, or speed up the slow stage",
    "internal_error": "a bug in Hephaestus; report it with the correlation ids",
    "review_rejected": "the reviewer rejects most plans; check the architect's model",
    "no_objective": "the brain finds nothing to do; queue objectives (POST /api/objectives) "
    "or point the agent at another repository",
    "repeated_objective": "the brain keeps proposing objectives that already failed; queue "
    "objectives or point the agent at another repository",
    "discarded": "the maestro discards most plans (DISCARD strategy)",
    "no_change": "plans change nothing; give the architect a stronger model",
}
Recommendation = dict[str, Any]
Rule = Callable[[Measurements], Recommendation | None]


class PerformanceAnalyzer:
    """Analyses the measurements ``measure()`` returns (from memory or Prometheus)."""

    def __init__(self, measure: Callable[[], Measurements]) -> None:
        self._measure = measure

    def analyze_agent_performance(self) -> dict[str, Any]:
        """``overall_performance``, ``bottlenecks`` and ``recommendations``, plus the data."""
        measured = self._measure()
        kpis = evaluate(measured)
        overall: dict[str, Any] = {
            "source": measured.source,
            "window_s": measured.window_s,
            "cycles": measured.cycles,
            "kpis": kpis,
        }
        if measured.cycles < MIN_CYCLES:
            overall |= {
                "status": "not enough data",
                "score": None,
                "detail": f"{measured.cycles} cycle(s) in the window; a score needs at least "
                f"{MIN_CYCLES}",
            }
            return {
                "overall_performance": overall,
                "bottlenecks": [],
                "recommendations": [],
                "measurements": measured.to_dict(),
            }
        with_data = [k for k in kpis if k["state"] != "no_data"]
        overall |= {
            "status": "ok",
            "score": overall_score(kpis),
            "kpis_met": sum(k["state"] == "ok" for k in with_data),
            "kpis_measured": len(with_data),
        }
        return {
            "overall_performance": overall,
            "bottlenecks": bottlenecks(measured),
            "recommendations": [r for rule in RULES if (r := rule(measured)) is not None],
            "measurements": measured.to_dict(),
        }


def bottlenecks(m: Measurements) -> list[dict[str, Any]]:
    """Stages and models with at least 25 % of cycle time or a p95 over the 5 s budget."""
    found = []
    for kind, stats in (("stage", m.stages), ("model", m.models)):
        for name, stat in stats.items():
            share = m.share(stat.total_s) or 0.0
            over = stat.p95_s is not None and stat.p95_s > AGENT_BUDGET_S
            if share >= BOTTLENECK_SHARE or over:
                found.append(
                    {
                        "kind": kind,
                        "name": name,
                        "share": round(share, 4),
                        "total_s": round(stat.total_s, 3),
                        "p95_s": stat.p95_s,
                        "budget_s": AGENT_BUDGET_S,
                        "over_budget": over,
                    }
                )
    return sorted(found, key=lambda b: (-b["share"], b["kind"], b["name"]))


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.0f} %"


def _recommend(rule: str, message: str, **evidence: Any) -> Recommendation:
    return {"rule": rule, "message": message, "evidence": evidence}


def _slowest(stats: dict[str, TimeStat]) -> tuple[str, TimeStat] | None:
    measured = [(name, s) for name, s in stats.items() if s.p95_s is not None]
    return max(measured, key=lambda item: item[1].p95_s or 0.0) if measured else None


def llm_share(m: Measurements) -> Recommendation | None:
    """Model calls take most of the cycle and the slowest model is over the budget."""
    share = m.share(m.llm_time_s)
    slowest = _slowest(m.models)
    if share is None or share < LLM_SHARE or slowest is None:
        return None
    model, stat = slowest
    if stat.p95_s is None or stat.p95_s <= AGENT_BUDGET_S:
        return None
    return _recommend(
        "llm_share",
        f"LLM calls are {_pct(share)} of cycle time, p95 {stat.p95_s:.1f} s on model {model}: "
        f"over the {AGENT_BUDGET_S:g} s budget; put a faster model first for its role in "
        "llm.models or lower llm.max_tokens",
        share=round(share, 4),
        model=model,
        p95_s=stat.p95_s,
    )


def slow_agent(m: Measurements) -> Recommendation | None:
    """The agent response KPI is breached."""
    if m.agent_p95_s is None or m.agent_p95_s <= AGENT_BUDGET_S:
        return None
    stages = {s: stat for s, stat in m.stages.items() if s in AGENT_OF_STAGE}
    slowest = _slowest(stages)
    stage, stat = slowest if slowest else ("-", TimeStat(0, 0, None))
    agent = next((str(a) for s, a in AGENT_OF_STAGE.items() if s == stage), stage)
    return _recommend(
        "slow_agent",
        f"Agent response p95 is {m.agent_p95_s:.1f} s, over the {AGENT_BUDGET_S:g} s budget; "
        f"the slowest is {agent} (stage {stage}, p95 "
        f"{stat.p95_s or 0:.1f} s): give that role a faster model in llm.models",
        p95_s=m.agent_p95_s,
        stage=stage,
        stage_p95_s=stat.p95_s,
    )


def slow_validation(m: Measurements) -> Recommendation | None:
    """The project's tests take most of the cycle."""
    stat = m.stages.get("validate")
    share = m.share(stat.total_s) if stat else None
    if stat is None or share is None or share < VALIDATION_SHARE:
        return None
    return _recommend(
        "slow_validation",
        f"Validation is {_pct(share)} of cycle time (p95 {stat.p95_s or 0:.1f} s): speed up "
        "the project's tests (pytest -x, fewer slow tests) or use SYNTAX_ONLY for changes "
        "that only touch docstrings",
        share=round(share, 4),
        p95_s=stat.p95_s,
    )


def low_success(m: Measurements) -> Recommendation | None:
    """Fewer than 90 % of cycles commit a change."""
    rate = m.success_rate
    if rate is None or rate >= 0.9:
        return None
    unsuccessful = {r: n for r, n in m.reasons.items() if r != "committed"}
    reason, count = max(unsuccessful.items(), key=lambda item: item[1])
    return _recommend(
        "low_success",
        f"Success rate is {_pct(rate)} over {m.cycles} cycles (target 90 %); {count} of "
        f"{sum(unsuccessful.values())} unsuccessful cycles ended with {reason}: "
        f"{FAILURE_ADVICE.get(reason, 'see hephaestus history for details')}",
        success_rate=round(rate, 4),
        reason=reason,
        count=count,
    )


def internal_errors(m: Measurements) -> Recommendation | None:
    """Any internal error is a bug."""
    if not m.internal_errors:
        return None
    ids = ", ".join(m.internal_error_ids[:3]) or "see hephaestus history"
    return _recommend(
        "internal_errors",
        f"{m.internal_errors} cycle(s) failed with internal_error (target 0): a bug in "
        f"Hephaestus; report it with the traces of {ids}",
        count=m.internal_errors,
        correlation_ids=m.internal_error_ids[:10],
    )


def slow_recovery(m: Measurements) -> Recommendation | None:
    """Failure streaks last longer than 30 s."""
    if m.mttr_s is None or m.mttr_s <= 30:
        return None
    return _recommend(
        "slow_recovery",
        f"Mean time to recovery is {m.mttr_s:.0f} s over {m.recoveries} recoveries (target "
        "30 s): lower resilience.failure_backoff_max and resilience.breaker_reset_timeout",
        mttr_s=round(m.mttr_s, 3),
        recoveries=m.recoveries,
    )


def low_throughput(m: Measurements) -> Recommendation | None:
    """Fewer than 100 objectives a day."""
    per_day = m.per_day
    if per_day is None or per_day >= 100:
        return None
    mean = m.cycle_time_s / m.cycles if m.cycles else 0.0
    busy = m.cycle_time_s / m.observed_s if m.observed_s else 0.0
    advice = (
        "cycles are short but far apart; lower service.interval"
        if busy < 0.5
        else "cycles themselves are slow; see the bottlenecks"
    )
    return _recommend(
        "low_throughput",
        f"{per_day:.0f} objectives/day at the observed pace (target 100); a cycle takes "
        f"{mean:.1f} s on average and the agent is busy {_pct(busy)} of the time: {advice}",
        per_day=round(per_day, 2),
        mean_cycle_s=round(mean, 3),
        busy=round(busy, 4),
    )


def frequent_retries(m: Measurements) -> Recommendation | None:
    """Model calls often need a retry."""
    if not m.retries or not m.llm_calls or m.retries / m.llm_calls < RETRY_RATIO:
        return None
    return _recommend(
        "frequent_retries",
        f"{m.retries} retries for {m.llm_calls} model calls ({_pct(m.retries / m.llm_calls)}): "
        "the provider is unreliable; check its status or add fallback models in llm.models",
        retries=m.retries,
        llm_calls=m.llm_calls,
    )


def breakers_opened(m: Measurements) -> Recommendation | None:
    """A circuit breaker opened."""
    if not m.breaker_opens:
        return None
    return _recommend(
        "breakers_opened",
        f"Circuit breakers opened {m.breaker_opens} time(s): a model failed repeatedly; add "
        "fallback models in llm.models so each role keeps working while one is down",
        opens=m.breaker_opens,
    )


def mostly_rejected(m: Measurements) -> Recommendation | None:
    """Most cycles decide to change nothing."""
    rejected = m.outcomes.get("rejected", 0)
    if not m.cycles or rejected / m.cycles < REJECTED_SHARE:
        return None
    reasons = {r: n for r, n in m.reasons.items() if r in _REJECTED}
    reason = max(reasons.items(), key=lambda item: item[1])[0] if reasons else "-"
    return _recommend(
        "mostly_rejected",
        f"{_pct(rejected / m.cycles)} of cycles were rejected, mostly {reason}: "
        f"{FAILURE_ADVICE.get(reason, '')}",
        share=round(rejected / m.cycles, 4),
        reason=reason,
    )


_REJECTED = ("no_objective", "repeated_objective", "review_rejected", "discarded", "no_change")
RULES: tuple[Rule, ...] = (
    internal_errors,
    low_success,
    slow_agent,
    llm_share,
    slow_validation,
    slow_recovery,
    low_throughput,
    frequent_retries,
    breakers_opened,
    mostly_rejected,
)
