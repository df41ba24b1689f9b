"""Typed configuration: ``hephaestus.toml`` merged with ``HEPHAESTUS_<SECTION>_<KEY>`` variables.

Every field is declared once, with its type and what it allows; loading walks those
declarations, so an unknown key or a bad value fails with a message that names the key,
the value and what is allowed, instead of surfacing later as a confusing crash.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import math
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

ENV_PREFIX = "HEPHAESTUS_"
ENV_CONFIG_FILE = "HEPHAESTUS_CONFIG"
# set by the agent for its own subprocesses, not configuration
_ENV_NOT_CONFIG = {ENV_CONFIG_FILE, "HEPHAESTUS_SPAN_FILE", "HEPHAESTUS_PYTEST_REPORT"}
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


@dataclass(frozen=True)
class Config:
    """The effective configuration of one Hephaestus process."""

    agent: AgentConfig = field(default_factory=AgentConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    chaos: ChaosConfig = field(default_factory=ChaosConfig)

    def with_overrides(self, **sections: Mapping[str, Any]) -> Config:
        """Return a copy with ``section={key: value}`` overrides validated like file values."""
        return _build(_merge(to_dict(self), sections), source="override")


SECTIONS: dict[str, type] = dict(get_type_hints(Config))


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or ``$HEPHAESTUS_CONFIG``), then apply ``HEPHAESTUS_*`` overrides.

    A missing explicit file is an error; with no file at all, the defaults apply.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    source = "defaults"
    path = path or (Path(env[ENV_CONFIG_FILE]) if env.get(ENV_CONFIG_FILE) else None)
    if path is not None:
        raw, source = _read_toml(path), str(path)
    raw = _merge(raw, _env_overrides(env))
    return _build(raw, source=source)


MAX_CONFIG_BYTES = 1024 * 1024


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; pass an existing --config file"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory; pass a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_CONFIG:
            continue
        section, key = _env_target(name)
        overrides.setdefault(section, {})[key] = _EnvValue(name, value)
    return overrides


def _env_target(name: str) -> tuple[str, str]:
    rest = name[len(ENV_PREFIX) :].lower()
    for section, cls in SECTIONS.items():
        if rest.startswith(section + "_"):
            key = rest[len(section) + 1 :]
            if key in _field_types(cls):
                return section, key
    allowed = ", ".join(
        f"{ENV_PREFIX}{s.upper()}_{k.upper()}" for s, c in SECTIONS.items() for k in _field_types(c)
    )
    raise ConfigError(f"unknown environment variable {name}; allowed: {allowed}")


@dataclass(frozen=True)
class _EnvValue:
    """A string from the environment, converted to the field's type on validation."""

    name: str
    text: str


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for section, values in extra.items():
        if isinstance(values, Mapping) and isinstance(merged.get(section), dict):
            merged[section].update(values)
        else:
            merged[section] = dict(values) if isinstance(values, Mapping) else values
    return merged


def _build(raw: Mapping[str, Any], source: str) -> Config:
    sections: dict[str, Any] = {}
    for name, values in raw.items():
        if name not in SECTIONS:
            raise ConfigError(
                f"unknown section [{name}] in {source}; allowed sections: {', '.join(SECTIONS)}"
            )
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{name}] in {source} must be a table of keys, got {values!r}")
        sections[name] = _build_section(name, SECTIONS[name], values, source)
    config = Config(**sections)
    _check_cross_fields(config)
    return config


def _field_types(cls: type) -> dict[str, type]:
    return get_type_hints(cls)


def _build_section(section: str, cls: type, values: Mapping[str, Any], source: str) -> Any:
    types_ = _field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            hint = ""
            if key == "api_key":
                hint = "; never store the key in config: set llm.api_key_env to an env var name"
            raise ConfigError(
                f"unknown key {section}.{key} in {source}; allowed keys: {', '.join(fields)}{hint}"
            )
        kwargs[key] = _validate(f"{section}.{key}", value, types_[key], fields[key].metadata)
    return cls(**kwargs)


def _validate(key: str, value: Any, kind: type, rules: Mapping[str, Any]) -> Any:
    origin = kind if isinstance(kind, type) else getattr(kind, "__origin__", kind)
    if isinstance(value, _EnvValue):
        value = _from_env(key, value, origin)
    value = _coerce(key, value, origin)
    if "items" in rules:
        _check_items(key, value, rules["items"])
    if isinstance(value, float) and math.isnan(value):  # NaN passes every range check
        raise ConfigError(f"{key} = {value!r} must be {_TYPE_NAMES[float]}, not NaN")
    if "choices" in rules and value not in rules["choices"]:
        raise ConfigError(
            f"{key} = {value!r} is not allowed; choose one of: {', '.join(rules['choices'])}"
        )
    if "min" in rules and value < rules["min"]:
        raise ConfigError(f"{key} = {value!r} is too small; it must be >= {rules['min']}")
    if "max" in rules and value > rules["max"]:
        raise ConfigError(f"{key} = {value!r} is too large; it must be <= {rules['max']}")
    return value


def _from_env(key: str, value: _EnvValue, origin: type) -> Any:
    text = value.text.strip()
    if origin is bool:
        lowered = text.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{value.name}={value.text!r} ({key}) must be true or false")
    if origin is list:
        return [item.strip() for item in text.split(",") if item.strip()]
    if origin is dict:
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            raise ConfigError(
                f"{value.name}={value.text!r} ({key}) must be an inline TOML table, "
                f'e.g. {{a = ["b"]}}'
            ) from None
    if origin in (int, float):
        try:
            return origin(text)
        except ValueError:
            raise ConfigError(
                f"{value.name}={value.text!r} ({key}) must be {_TYPE_NAMES[origin]}"
            ) from None
    return text


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def _coerce(key: str, value: Any, origin: type) -> Any:
    if origin is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{key} = {value!r} must be {_TYPE_NAMES[origin]}")
    if isinstance(origin, types.GenericAlias):  # pragma: no cover - fields use bare types
        origin = origin.__origin__
    if not isinstance(value, origin):
        raise ConfigError(f"{key} = {value!r} must be {_TYPE_NAMES.get(origin, origin.__name__)}")
    return value


def _check_items(key: str, values: list[Any], kind: type) -> None:
    for index, item in enumerate(values):
        if not isinstance(item, kind) or isinstance(item, bool) is not (kind is bool):
            raise ConfigError(
                f"{key}[{index}] = {item!r} must be {_TYPE_NAMES[kind]}; "
                f"every item of {key} must be {_TYPE_NAMES[kind]}"
            )


def _check_cross_fields(config: Config) -> None:
    strategies = config.validation.strategies
    for name, steps in strategies.items():
        if not isinstance(steps, list) or any(step not in VALIDATION_STEPS for step in steps):
            raise ConfigError(
                f"validation.strategies.{name} = {steps!r}: each strategy is a list of steps "
                f"from {', '.join(VALIDATION_STEPS)} (an empty list discards the plan)"
            )
    if config.validation.default_strategy not in strategies:
        raise ConfigError(
            f"validation.default_strategy = {config.validation.default_strategy!r} is not a "
            f"configured strategy; choose one of: {', '.join(strategies)}"
        )
    for role in ROLES:
        models = config.llm.models.get(role)
        if not models or not all(isinstance(m, str) and m for m in models):
            raise ConfigError(
                f"llm.models.{role} = {models!r}: give each role a non-empty list of model names"
            )
    unknown = set(config.llm.models) - set(ROLES)
    if unknown:
        raise ConfigError(
            f"llm.models has unknown role(s) {', '.join(sorted(unknown))}; "
            f"roles: {', '.join(ROLES)}"
        )
    _check_context_windows(config.llm)
    _check_timeouts(config)


def _check_context_windows(llm: LLMConfig) -> None:
    for model, tokens in llm.context_tokens_by_model.items():
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 256:
            raise ConfigError(
                f"llm.context_tokens_by_model.{model} = {tokens!r}: give each model's context "
                "window as a whole number of tokens >= 256"
            )
    windows = {"llm.context_tokens": llm.context_tokens} | {
        f"llm.context_tokens_by_model.{m}": t for m, t in llm.context_tokens_by_model.items()
    }
    for key, tokens in windows.items():
        if tokens - llm.max_tokens < MIN_PROMPT_TOKENS:
            raise ConfigError(
                f"{key} = {tokens} leaves {tokens - llm.max_tokens} tokens for the prompt after "
                f"llm.max_tokens = {llm.max_tokens}; at least {MIN_PROMPT_TOKENS} are needed: "
                "lower llm.max_tokens or give the model's real context window"
            )


def _check_timeouts(config: Config) -> None:
    request, retry = config.llm.request_timeout, config.resilience.retry_timeout
    if retry <= request:
        raise ConfigError(
            f"resilience.retry_timeout = {retry:g} must exceed llm.request_timeout = {request:g}, "
            "or a request that timed out can never be retried; allow at least one retry, "
            f"e.g. resilience.retry_timeout = {2 * request + 10:g}"
        )


def to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """Return the config as plain nested dicts (the shape of the TOML file)."""
    return dataclasses.asdict(config)


def describe(config: Config, env: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Return the effective config for display, with secrets masked.

    The API key itself never lives in config; the display says whether its variable is set.
    """
    env = os.environ if env is None else env
    shown = to_dict(config)
    key_env = config.llm.api_key_env
    shown["llm"]["api_key"] = ("****" if env.get(key_env) else "(not set)") if key_env else "(none)"
    return shown
