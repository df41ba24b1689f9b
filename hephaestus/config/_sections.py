"""The configuration's sections: every field declared once, with its type and what it allows."""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "HEPHAESTUS_"
ENV_CONFIG_FILE = "HEPHAESTUS_CONFIG"
# set by the agent for its own subprocesses, not configuration
STRUCTURED_OUTPUT_MODES = ("json_schema", "json_object", "off")
MIN_PROMPT_TOKENS = 512  # what a context window must leave for the prompt after max_tokens
VALIDATION_STEPS = ("syntax", "pytest")


class Role(enum.StrEnum):
    """The agent roles that ask a model: the keys of ``[llm.models]``, ``gen_ai.agent.name``."""

    BRAIN = "brain"
    ARCHITECT = "architect"
    CODE_REVIEWER = "code_reviewer"
    MAESTRO = "maestro"


ROLES = tuple(role.value for role in Role)


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message says the fix."""


def _spec(default: Any, help: str, **rules: Any) -> Any:
    """Declare a field with its default, a one-line help and validation rules."""
    if isinstance(default, (list, dict)):
        return field(
            default_factory=lambda: copy.deepcopy(default), metadata={"help": help, **rules}
        )
    return field(default=default, metadata={"help": help, **rules})


@dataclass(frozen=True)
class AgentConfig:
    """What the agent does in a cycle."""

    provider: str = _spec("offline", "LLM provider", choices=("offline", "openai"))
    seed: int = _spec(0, "seed of the offline provider and fault injection", min=0)
    memory_path: str = _spec("", "SQLite memory; empty = <project>/.hephaestus/memory.db")
    workspace_dir: str = _spec("", "isolated workspaces; empty = <project>/.hephaestus/workspaces")
    max_manifest_files: int = _spec(200, "files listed in the manifest", min=1, max=10_000)
    max_prompt_source_bytes: int = _spec(60_000, "source text sent to the brain", min=0)
    history_window: int = _spec(20, "recent cycles that feed the next objective", min=0)
    max_objective_failures: int = _spec(
        2, "failures after which an objective is not proposed again", min=1
    )
    review_mode: str = _spec(
        "always", "when the code_reviewer model is asked", choices=("always", "risky_only")
    )
    max_patch_files: int = _spec(5, "files one plan may touch before review rejects it", min=1)
    max_plan_file_bytes: int = _spec(
        262_144, "bytes of new content one plan may write into one file", min=1
    )
    allow_test_edits: bool = _spec(
        False, "plans may edit tests, conftest.py and pytest config when the objective is tests"
    )


@dataclass(frozen=True)
class ValidationConfig:
    """How a patch is validated and which strategies the maestro may pick."""

    default_strategy: str = _spec("SYNTAX_AND_PYTEST", "strategy named in the maestro prompt")
    strategies: dict = _spec(
        {"SYNTAX_ONLY": ["syntax"], "SYNTAX_AND_PYTEST": ["syntax", "pytest"], "DISCARD": []},
        "strategy name -> ordered steps (syntax, pytest); an empty list discards the plan",
    )
    pytest_args: list = _spec(
        ["-q", "-x", "-p", "no:cacheprovider"], "arguments after pytest", items=str
    )
    pytest_timeout: float = _spec(300.0, "seconds before pytest's process group is killed", min=1)
    sandbox: str = _spec(
        "auto",
        "where tests run: bwrap (no network, no secrets, only the worktree writable), none "
        "(on the host), auto (bwrap when it works here)",
        choices=("auto", "bwrap", "none"),
    )
    pass_env: list = _spec(
        [], "more env vars the tests see (never the API key or *_KEY/_TOKEN/_SECRET)", items=str
    )
    require_tests: bool = _spec(
        True, "a Python change in a project with tests is always validated by its tests"
    )


@dataclass(frozen=True)
class LLMConfig:
    """The OpenAI-compatible Chat Completions endpoint and the models of each role."""

    base_url: str = _spec("https://openrouter.ai/api/v1", "Chat Completions base URL")
    api_key_env: str = _spec(
        "OPENROUTER_API_KEY", "name of the env var holding the API key; empty = no auth"
    )
    request_timeout: float = _spec(60.0, "seconds per HTTP request", min=0.01)
    temperature: float = _spec(0.2, "sampling temperature", min=0, max=2)
    max_tokens: int = _spec(2048, "completion token limit", min=1)
    max_response_bytes: int = _spec(
        1_048_576, "bytes of one model response before it is refused", min=1024
    )
    models: dict = _spec(
        {role: ["openai/gpt-4o-mini"] for role in ROLES},
        "role -> ordered model list (first is primary, the rest are fallbacks)",
    )
    structured_output: str = _spec(
        "json_schema",
        "ask for answers that follow each role's JSON schema; a model that rejects a mode "
        "is asked again with the next one (json_schema -> json_object -> off)",
        choices=STRUCTURED_OUTPUT_MODES,
    )
    context_tokens: int = _spec(
        8192, "context window of every model, in tokens (prompt + max_tokens)", min=256
    )
    context_tokens_by_model: dict = _spec(
        {}, "model -> context window in tokens, for models that differ from context_tokens"
    )
    local_server: str = _spec(
        "auto",
        "the endpoint is one local server that keeps computing a request that timed out "
        "(llama.cpp, Ollama): such timeouts are not retried; auto = yes on a loopback address",
        choices=("auto", "yes", "no"),
    )

    def context_window(self, model: str) -> int:
        """The context window of ``model`` in tokens."""
        return int(self.context_tokens_by_model.get(model, self.context_tokens))


@dataclass(frozen=True)
class LoggingConfig:
    """Log format and level."""

    level: str = _spec("info", "log level", choices=("debug", "info", "warning", "error"))
    format: str = _spec(
        "auto", "auto = console on a TTY, JSON otherwise", choices=("auto", "json", "console")
    )


@dataclass(frozen=True)
class TelemetryConfig:
    """Traces, metrics and what they may contain. Standard ``OTEL_*`` variables win over this."""

    enabled: bool = _spec(True, "record traces (metrics and logs are always on)")
    otlp_endpoint: str = _spec("", "OTLP traces endpoint; empty = $OTEL_EXPORTER_OTLP_* or none")
    otlp_protocol: str = _spec("http/protobuf", "OTLP protocol", choices=("http/protobuf", "grpc"))
    local_traces: bool = _spec(True, "also write spans to <project>/.hephaestus/traces.jsonl")
    traces_file: str = _spec("", "path of the local span file; empty = the default above")
    capture_content: bool = _spec(
        False, "record prompt/completion text on spans (off: hash+length)"
    )
    environment: str = _spec("development", "deployment.environment.name resource attribute")
    shutdown_timeout: float = _spec(5.0, "seconds shutdown may spend flushing", min=0.1, max=5)
    export_timeout: float = _spec(3.0, "seconds one OTLP export may take", min=0.1)
    max_queue_size: int = _spec(2048, "spans buffered before new ones are dropped", min=16)
    schedule_delay: float = _spec(0.5, "seconds between background exports", min=0.01)
    test_spans: str = _spec(
        "failed",
        "a `pytest test` span for failed tests only (counts on the session), or for all",
        choices=("failed", "all"),
    )


@dataclass(frozen=True)
class ResilienceConfig:
    """Retries, circuit breakers, timeouts and shutdown."""

    retry_attempts: int = _spec(3, "attempts per model call (1 = no retry)", min=1, max=20)
    retry_timeout: float = _spec(
        150.0,
        "seconds all attempts of one model call may take; must exceed llm.request_timeout",
        min=0.1,
    )
    retry_wait_initial: float = _spec(0.5, "first backoff in seconds", min=0)
    retry_wait_max: float = _spec(10.0, "longest backoff in seconds", min=0)
    retry_wait_jitter: float = _spec(1.0, "random extra backoff in seconds", min=0)
    max_retry_after: float = _spec(60.0, "longest Retry-After honoured, in seconds", min=0)
    breaker_failure_threshold: int = _spec(3, "consecutive failures that open a breaker", min=1)
    breaker_reset_timeout: float = _spec(
        30.0, "seconds before an open breaker lets a probe through", min=0.01
    )
    failure_backoff: float = _spec(
        1.0, "pause after a failed cycle, doubling while they keep failing (0 = none)", min=0
    )
    failure_backoff_max: float = _spec(30.0, "longest pause between failing cycles", min=0)
    cycle_timeout: float = _spec(900.0, "seconds a whole cycle may take", min=1)
    stage_timeout: float = _spec(600.0, "seconds one stage may take", min=0.1)
    shutdown_grace: float = _spec(
        10.0, "seconds the current stage may finish after SIGTERM", min=0, max=300
    )


@dataclass(frozen=True)
class ChaosConfig:
    """Fault injection for tests, demos and alert drills; all zero (off) by default."""

    seed: int = _spec(0, "seed of the injected faults (same seed, same faults)", min=0)
    llm_error_rate: float = _spec(0.0, "share of model calls that fail", min=0, max=1)
    llm_timeout_share: float = _spec(
        0.5, "share of injected failures that are timeouts (the rest are HTTP 500)", min=0, max=1
    )
    llm_latency: float = _spec(0.0, "seconds added to every model call", min=0, max=600)
    llm_hang_rate: float = _spec(
        0.0, "share of model calls that hang until their timeout", min=0, max=1
    )

    @property
    def active(self) -> bool:
        """Whether any fault is injected."""
        return bool(self.llm_error_rate or self.llm_latency or self.llm_hang_rate)


@dataclass(frozen=True)
class ServiceConfig:
    """The long-running service: loop pacing and the HTTP endpoints."""

    interval: float = _spec(30.0, "seconds between cycles of `hephaestus serve`", min=0)
    host: str = _spec("127.0.0.1", "bind address of /metrics and the API")
    port: int = _spec(9464, "port of /metrics and the API (0 = any free port)", min=0, max=65535)
    max_connections: int = _spec(
        1000, "open connections beyond which requests get 503", min=1, max=100_000
    )
    read_timeout: float = _spec(
        10.0, "seconds a client has to send a whole request before it is cut off", min=0.1
    )
    keep_alive_timeout: float = _spec(
        5.0, "seconds an idle keep-alive connection stays open", min=0.1
    )
    jaeger_url: str = _spec(
        "", "Jaeger UI the dashboard's trace view links to (e.g. http://localhost:16686)"
    )
