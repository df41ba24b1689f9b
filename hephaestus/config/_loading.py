"""The whole configuration, loaded from ``hephaestus.toml`` and ``HEPHAESTUS_<SECTION>_<KEY>``.

Loading walks the sections' field declarations, so an unknown key or a bad value fails with a
message that names the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from hephaestus.config._sections import (
    ENV_CONFIG_FILE,
    ENV_PREFIX,
    MIN_PROMPT_TOKENS,
    ROLES,
    VALIDATION_STEPS,
    AgentConfig,
    ChaosConfig,
    ConfigError,
    LLMConfig,
    LoggingConfig,
    ResilienceConfig,
    ServiceConfig,
    TelemetryConfig,
    ValidationConfig,
)

_ENV_NOT_CONFIG = {ENV_CONFIG_FILE, "HEPHAESTUS_SPAN_FILE", "HEPHAESTUS_PYTEST_REPORT"}


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


def to_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """``config show``'s text: :func:`describe`'s sections as TOML.

    Values are written in JSON syntax, which TOML accepts for these types.
    """
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, Mapping):
        inner = ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)
