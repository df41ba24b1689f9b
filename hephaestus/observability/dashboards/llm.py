"""LLM: the model calls of the agents — volume, errors, latency, tokens, retries, breakers."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from hephaestus.observability import recording as rec
from hephaestus.observability.dashboards.queries import MODEL, RATE, quantile, sel
from hephaestus.observability.kpis import TARGETS
from hephaestus.observability.panels import (
    BREACH,
    OK,
    Panel,
    Query,
    dashboard,
    graph_panel,
    model_variable,
    timeline_panel,
)

UID = "hephaestus-llm"
DURATION = "gen_ai_client_operation_duration_seconds"
BREAKER = "hephaestus_circuit_breaker_state"
OPEN = 'state="open"'
HALF_OPEN = 'state="half_open"'


def _calls(*matchers: str, by: str = "gen_ai_request_model") -> str:
    calls = sel(f"{DURATION}_count", MODEL, *matchers)
    return f"sum by ({by}) (rate({calls}[{RATE}]))"


def _requests() -> list[Panel]:
    errors = f"{_calls(rec.FAILED_CALL, by='gen_ai_request_model, error_type')}\nor {_calls()} * 0"
    return [
        graph_panel(
            "Requests by model",
            "Model calls per second (a call includes its retries).",
            "reqps",
            Query(_calls(), "{{gen_ai_request_model}}"),
            width=8,
        ),
        graph_panel(
            "Errors by model and type",
            "Model calls per second that failed after retries, by error type (timeout, "
            "http_500, circuit_open, …); zero while none fail.",
            "reqps",
            Query(errors, "{{gen_ai_request_model}} {{error_type}}"),
            width=8,
        ),
        graph_panel(
            "Error ratio by model",
            "Share of model calls that failed over 5 minutes; HephaestusLLMErrorsHigh fires "
            "above 10 %.",
            "percentunit",
            Query(sel(rec.LLM_ERROR_RATIO, MODEL), "{{gen_ai_request_model}}"),
            steps=[(None, OK), (0.1, BREACH)],
            width=8,
        ),
    ]


def _latency_and_tokens() -> list[Panel]:
    tokens = sel("gen_ai_client_token_usage_sum", MODEL)
    return [
        graph_panel(
            "Latency p50 / p95 / p99",
            "Model call duration percentiles, by model; click an exemplar to open the call's "
            "span in Jaeger.",
            "s",
            *(
                Query(
                    quantile(q / 100, DURATION, "gen_ai_request_model, ", MODEL),
                    f"p{q} {{{{gen_ai_request_model}}}}",
                    exemplar=True,
                )
                for q in (50, 95, 99)
            ),
            steps=[(None, OK), (TARGETS.agent_response_p95_seconds, BREACH)],
        ),
        graph_panel(
            "Tokens per second",
            "Input and output tokens per second, by model.",
            "suffix: tokens/s",
            Query(
                f"sum by (gen_ai_request_model, gen_ai_token_type) (rate({tokens}[{RATE}]))",
                "{{gen_ai_request_model}} {{gen_ai_token_type}}",
            ),
        ),
    ]


def _resilience() -> list[Panel]:
    # one number per state for the timeline: closed 0, half-open 1, open 2
    state = (
        f"max by (breaker) (\n  2 * {sel(BREAKER, OPEN)}\n"
        f"  + ignoring (state) {sel(BREAKER, HALF_OPEN)}\n)"
    )
    return [
        graph_panel(
            "Retries by error type",
            "Retries per second scheduled by stamina, by the error that caused them.",
            "ops",
            Query(
                f"sum by (error_type) (rate({sel('stamina_retries_total')}[{RATE}]))",
                "{{error_type}}",
            ),
        ),
        timeline_panel(
            "Circuit breaker state",
            "State of each model's circuit breaker: while open, calls go to the role's "
            "fallback models.",
            Query(state, "{{breaker}}"),
            [(0, "closed", "green"), (1, "half-open", "orange"), (2, "open", "red")],
        ),
    ]


def llm() -> Dashboard:
    """Model calls: volume, errors, latency, tokens, retries and circuit breakers."""
    return dashboard(
        UID,
        "Hephaestus / LLM",
        "Model calls of the agents: volume, errors, latency, tokens, retries, breakers.",
        [
            ("Requests", _requests()),
            ("Latency and tokens", _latency_and_tokens()),
            ("Resilience", _resilience()),
        ],
        variables=[model_variable()],
    )
