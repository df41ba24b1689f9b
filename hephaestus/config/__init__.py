"""Typed configuration: ``hephaestus.toml`` merged with ``HEPHAESTUS_<SECTION>_<KEY>`` variables.

Every field is declared once, with its type and what it allows (``_sections``); loading
walks those declarations (``_loading``), so an unknown key or a bad value fails with a
message that names the key, the value and what is allowed, instead of surfacing later as a
confusing crash.
"""

from hephaestus.config._loading import (
    MAX_CONFIG_BYTES,
    SECTIONS,
    Config,
    describe,
    load_config,
    to_dict,
    to_toml,
)
from hephaestus.config._sections import (
    ENV_CONFIG_FILE,
    ENV_PREFIX,
    MIN_PROMPT_TOKENS,
    ROLES,
    STRUCTURED_OUTPUT_MODES,
    VALIDATION_STEPS,
    AgentConfig,
    ChaosConfig,
    ConfigError,
    LLMConfig,
    LoggingConfig,
    ResilienceConfig,
    Role,
    ServiceConfig,
    TelemetryConfig,
    ValidationConfig,
)

__all__ = [
    "ENV_CONFIG_FILE",
    "ENV_PREFIX",
    "MAX_CONFIG_BYTES",
    "MIN_PROMPT_TOKENS",
    "ROLES",
    "SECTIONS",
    "STRUCTURED_OUTPUT_MODES",
    "VALIDATION_STEPS",
    "AgentConfig",
    "ChaosConfig",
    "Config",
    "ConfigError",
    "LLMConfig",
    "LoggingConfig",
    "ResilienceConfig",
    "Role",
    "ServiceConfig",
    "TelemetryConfig",
    "ValidationConfig",
    "describe",
    "load_config",
    "to_dict",
    "to_toml",
]
