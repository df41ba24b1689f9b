"""Configuration: TOML file, then ``HEPHAESTUS_<SECTION>_<KEY>`` variables, validated strictly.

Every mistake fails at load time with a ConfigError that names the key, the bad value and
what is allowed; the API key never lives in config and never shows up in its display.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from pathlib import Path
from typing import get_type_hints

import pytest

from hephaestus.config import (
    ENV_CONFIG_FILE,
    ROLES,
    SECTIONS,
    Config,
    ConfigError,
    describe,
    load_config,
    to_dict,
    to_toml,
)

SECRET = "sk-test-0123456789abcdef-do-not-leak"


def write_toml(tmp_path: Path, text: str, name: str = "hephaestus.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, toml: str = "", env: dict[str, str] | None = None) -> str:
    """The ConfigError message for loading ``toml`` with ``env``."""
    path = write_toml(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return str(info.value)


def assert_mentions(message: str, *needles: str) -> None:
    missing = [n for n in needles if n not in message]
    assert not missing, f"{missing} not in {message!r}"


# -- defaults and files -----------------------------------------------------------------------
def test_defaults_are_valid():
    config = load_config(env={})

    assert config == Config()
    assert config.agent.provider == "offline"
    assert config.validation.default_strategy in config.validation.strategies
    assert set(config.llm.models) == set(ROLES)


def test_default_config_survives_a_round_trip_through_its_dict():
    assert Config().with_overrides(**to_dict(Config())) == Config()


def test_defaults_are_not_shared_between_instances():
    first = Config()
    first.validation.strategies["EXTRA"] = ["syntax"]

    assert "EXTRA" not in Config().validation.strategies


def test_toml_file_values_are_loaded(tmp_path):
    path = write_toml(
        tmp_path,
        """
[agent]
provider = "openai"
seed = 7

[llm]
temperature = 1
models = {brain = ["m1", "m2"], architect = ["m3"], code_reviewer = ["m4"], maestro = ["m5"]}

[validation]
pytest_args = ["-q"]
strategies = {FAST = ["syntax"], FULL = ["syntax", "pytest"]}
default_strategy = "FAST"
""",
    )

    config = load_config(path, env={})

    assert config.agent.provider == "openai"
    assert config.agent.seed == 7
    assert config.llm.temperature == 1.0
    assert isinstance(config.llm.temperature, float)
    assert config.llm.models["brain"] == ["m1", "m2"]
    assert config.validation.pytest_args == ["-q"]
    assert config.validation.default_strategy == "FAST"
    assert config.agent.max_manifest_files == Config().agent.max_manifest_files  # untouched


def test_empty_file_gives_the_defaults(tmp_path):
    assert load_config(write_toml(tmp_path, ""), env={}) == Config()


def test_missing_config_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError) as info:
        load_config(missing, env={})

    assert_mentions(str(info.value), str(missing), "does not exist")


def test_invalid_toml_is_a_clear_error(tmp_path):
    path = write_toml(tmp_path, "[agent\nseed = ")

    with pytest.raises(ConfigError) as info:
        load_config(path, env={})

    assert_mentions(str(info.value), str(path), "not valid TOML")


def test_hephaestus_config_variable_selects_the_file(tmp_path):
    path = write_toml(tmp_path, "[agent]\nseed = 42\n", name="from-env.toml")

    assert load_config(env={ENV_CONFIG_FILE: str(path)}).agent.seed == 42


def test_explicit_path_wins_over_hephaestus_config(tmp_path):
    explicit = write_toml(tmp_path, "[agent]\nseed = 1\n", name="explicit.toml")
    other = write_toml(tmp_path, "[agent]\nseed = 2\n", name="other.toml")

    assert load_config(explicit, env={ENV_CONFIG_FILE: str(other)}).agent.seed == 1


def test_hephaestus_config_naming_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(env={ENV_CONFIG_FILE: str(tmp_path / "gone.toml")})


def test_empty_hephaestus_config_means_no_file():
    assert load_config(env={ENV_CONFIG_FILE: ""}) == Config()


def test_process_environment_is_used_by_default(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("HEPHAESTUS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HEPHAESTUS_AGENT_SEED", "9")

    assert load_config().agent.seed == 9


# -- environment overrides --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text", "section", "key", "expected"),
    [
        pytest.param("HEPHAESTUS_AGENT_SEED", "12", "agent", "seed", 12, id="int"),
        pytest.param("HEPHAESTUS_AGENT_SEED", " 12 ", "agent", "seed", 12, id="int-with-spaces"),
        pytest.param("HEPHAESTUS_LLM_TEMPERATURE", "0.5", "llm", "temperature", 0.5, id="float"),
        pytest.param(
            "HEPHAESTUS_LLM_REQUEST_TIMEOUT",
            "3",
            "llm",
            "request_timeout",
            3.0,
            id="float-from-int-text",
        ),
        pytest.param(
            "HEPHAESTUS_AGENT_PROVIDER", "openai", "agent", "provider", "openai", id="str"
        ),
        pytest.param(
            "HEPHAESTUS_LLM_API_KEY_ENV",
            "MY_KEY",
            "llm",
            "api_key_env",
            "MY_KEY",
            id="key-with-underscores",
        ),
        pytest.param(
            "HEPHAESTUS_VALIDATION_PYTEST_ARGS",
            "-q, -x,, --maxfail=2 ",
            "validation",
            "pytest_args",
            ["-q", "-x", "--maxfail=2"],
            id="comma-list",
        ),
        pytest.param(
            "HEPHAESTUS_VALIDATION_STRATEGIES",
            '{QUICK = ["syntax"], SYNTAX_AND_PYTEST = ["syntax", "pytest"]}',
            "validation",
            "strategies",
            {"QUICK": ["syntax"], "SYNTAX_AND_PYTEST": ["syntax", "pytest"]},
            id="inline-table",
        ),
    ],
)
def test_env_variable_overrides_with_type_conversion(name, text, section, key, expected):
    config = load_config(env={name: text})

    value = getattr(getattr(config, section), key)
    assert value == expected
    assert type(value) is type(expected)


def test_env_overrides_the_file_and_keeps_the_rest(tmp_path):
    path = write_toml(tmp_path, "[agent]\nseed = 1\nhistory_window = 5\n")

    config = load_config(path, env={"HEPHAESTUS_AGENT_SEED": "2"})

    assert (config.agent.seed, config.agent.history_window) == (2, 5)


def test_env_inline_table_of_models_replaces_all_roles():
    models = {role: [f"{role}-model", "fallback"] for role in ROLES}
    text = "{" + ", ".join(f"{role} = {json.dumps(m)}" for role, m in models.items()) + "}"

    assert load_config(env={"HEPHAESTUS_LLM_MODELS": text}).llm.models == models


def test_variables_without_the_prefix_are_ignored():
    assert load_config(env={"AGENT_SEED": "x", "hephaestus_agent_seed": "x"}) == Config()


def a_bool_field() -> tuple[str, str]:
    """Some (section, key) whose type is bool, wherever the config declares one."""
    for section, cls in SECTIONS.items():
        for key, kind in get_type_hints(cls).items():
            if kind is bool:
                return section, key
    pytest.skip("the config declares no bool field")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        (" off ", False),
    ],
)
def test_env_text_converts_to_bool(text, expected):
    section, key = a_bool_field()

    config = load_config(env={f"HEPHAESTUS_{section.upper()}_{key.upper()}": text})

    assert getattr(getattr(config, section), key) is expected


def test_bad_env_bool_names_the_variable_value_and_choices(tmp_path):
    section, key = a_bool_field()
    name = f"HEPHAESTUS_{section.upper()}_{key.upper()}"

    message = error_of(tmp_path, env={name: "maybe"})

    assert_mentions(message, name, "'maybe'", f"{section}.{key}", "true or false")


def test_number_for_a_bool_in_the_file_is_refused(tmp_path):
    section, key = a_bool_field()

    message = error_of(tmp_path, f"[{section}]\n{key} = 1\n")

    assert_mentions(message, f"{section}.{key}", "1", "true or false")


# -- every error names the key, the value and what is allowed ---------------------------------
@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        pytest.param("[agnet]\nseed = 1\n", ["[agnet]", *SECTIONS], id="unknown-section"),
        pytest.param("agent = 5\n", ["[agent]", "5", "table"], id="section-not-a-table"),
        pytest.param("[agent]\nsed = 1\n", ["agent.sed", "seed", "provider"], id="unknown-key"),
        pytest.param(
            '[agent]\nseed = "seven"\n', ["agent.seed", "'seven'", "integer"], id="wrong-type"
        ),
        pytest.param(
            "[agent]\nseed = true\n", ["agent.seed", "True", "integer"], id="bool-for-int"
        ),
        pytest.param(
            "[llm]\ntemperature = false\n",
            ["llm.temperature", "False", "number"],
            id="bool-for-float",
        ),
        pytest.param(
            "[llm]\ntemperature = nan\n", ["llm.temperature", "nan", "number"], id="nan-float"
        ),
        pytest.param(
            "[agent]\nprovider = 3\n", ["agent.provider", "3", "string"], id="int-for-str"
        ),
        pytest.param(
            '[validation]\npytest_args = "-q"\n',
            ["validation.pytest_args", "'-q'", "list"],
            id="str-for-list",
        ),
        pytest.param(
            '[llm]\nmodels = "gpt"\n', ["llm.models", "'gpt'", "table"], id="str-for-table"
        ),
        pytest.param(
            '[validation]\npytest_args = ["-q", 5]\n',
            ["validation.pytest_args[1] = 5", "must be a string"],
            id="int-in-a-list-of-strings",
        ),
        pytest.param(
            "[validation]\npass_env = [true]\n",
            ["validation.pass_env[0] = True", "must be a string"],
            id="bool-in-a-list-of-strings",
        ),
        pytest.param(
            '[validation]\nsandbox = "docker"\n',
            ["validation.sandbox", "'docker'", "auto", "bwrap", "none"],
            id="unknown-sandbox",
        ),
        pytest.param(
            "[llm]\nmax_response_bytes = 10\n",
            ["llm.max_response_bytes", "10", ">= 1024"],
            id="tiny-response-cap",
        ),
        pytest.param("[agent]\nseed = -1\n", ["agent.seed", "-1", ">= 0"], id="below-min"),
        pytest.param(
            "[llm]\ntemperature = 2.5\n", ["llm.temperature", "2.5", "<= 2"], id="above-max"
        ),
        pytest.param(
            "[agent]\nmax_manifest_files = 10001\n",
            ["agent.max_manifest_files", "10001", "<= 10000"],
            id="above-int-max",
        ),
        pytest.param(
            '[agent]\nprovider = "claude"\n',
            ["agent.provider", "'claude'", "offline", "openai"],
            id="bad-choice",
        ),
        pytest.param(
            '[logging]\nlevel = "INFO"\n',
            ["logging.level", "'INFO'", "info", "debug"],
            id="choices-are-exact",
        ),
        pytest.param(
            '[validation]\nstrategies = {FAST = ["syntax", "lint"]}\ndefault_strategy = "FAST"\n',
            ["validation.strategies.FAST", "lint", "syntax", "pytest"],
            id="strategy-with-unknown-step",
        ),
        pytest.param(
            '[validation]\nstrategies = {FAST = "syntax"}\ndefault_strategy = "FAST"\n',
            ["validation.strategies.FAST", "'syntax'", "list"],
            id="strategy-not-a-list",
        ),
        pytest.param(
            '[validation]\ndefault_strategy = "FASTEST"\n',
            ["validation.default_strategy", "'FASTEST'", "SYNTAX_ONLY", "DISCARD"],
            id="default-strategy-not-configured",
        ),
        pytest.param(
            '[llm]\nmodels = {brain = [], architect = ["a"], code_reviewer = ["b"], '
            'maestro = ["c"]}\n',
            ["llm.models.brain", "[]", "non-empty list"],
            id="role-with-empty-model-list",
        ),
        pytest.param(
            '[llm]\nmodels = {brain = ["a"], architect = ["b"], code_reviewer = ["c"]}\n',
            ["llm.models.maestro", "None", "non-empty list"],
            id="role-missing",
        ),
        pytest.param(
            '[llm]\nmodels = {brain = [""], architect = ["a"], code_reviewer = ["b"], '
            'maestro = ["c"]}\n',
            ["llm.models.brain", "['']", "model names"],
            id="blank-model-name",
        ),
        pytest.param(
            '[llm]\nmodels = {brain = ["a"], architect = ["b"], code_reviewer = ["c"], '
            'maestro = ["d"], critic = ["e"]}\n',
            ["llm.models", "critic", *ROLES],
            id="unknown-role",
        ),
    ],
)
def test_file_error_names_key_value_and_what_is_allowed(tmp_path, toml, needles):
    assert_mentions(error_of(tmp_path, toml), *needles)


# -- models: structured outputs, context windows, timeouts -------------------------------------
def test_model_defaults_ask_for_json_schema_and_allow_one_retry_of_a_timed_out_request():
    config = load_config(env={})

    assert config.llm.structured_output == "json_schema"
    assert config.llm.context_tokens == 8192
    assert config.llm.local_server == "auto"
    # a full request timeout, the longest backoff and a second full request fit
    resilience = config.resilience
    assert resilience.retry_timeout >= 2 * config.llm.request_timeout + resilience.retry_wait_max


@pytest.mark.parametrize(("retry", "per_request"), [(60, 60), (30, 60), (0.5, 1)])
def test_a_retry_timeout_that_does_not_exceed_the_request_timeout_is_refused(
    tmp_path, retry, per_request
):
    message = error_of(
        tmp_path, f"[llm]\nrequest_timeout = {per_request}\n[resilience]\nretry_timeout = {retry}\n"
    )

    assert_mentions(
        message,
        f"resilience.retry_timeout = {retry:g}",
        f"llm.request_timeout = {per_request:g}",
        "can never be retried",
        f"resilience.retry_timeout = {2 * per_request + 10:g}",
    )


def test_the_timeout_rule_applies_to_environment_overrides_too():
    with pytest.raises(ConfigError, match=r"must exceed llm\.request_timeout = 200"):
        load_config(env={"HEPHAESTUS_LLM_REQUEST_TIMEOUT": "200"})


def test_each_model_has_its_own_context_window_or_the_default():
    config = load_config(
        env={
            "HEPHAESTUS_LLM_CONTEXT_TOKENS": "32768",
            "HEPHAESTUS_LLM_CONTEXT_TOKENS_BY_MODEL": '{"smollm2" = 4096}',
        }
    )

    assert config.llm.context_window("smollm2") == 4096
    assert config.llm.context_window("gpt-4o-mini") == 32768


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        pytest.param(
            '[llm]\nstructured_output = "grammar"\n',
            ["llm.structured_output", "'grammar'", "json_schema", "json_object", "off"],
            id="unknown-structured-output-mode",
        ),
        pytest.param(
            '[llm]\nlocal_server = "maybe"\n',
            ["llm.local_server", "'maybe'", "auto", "yes", "no"],
            id="unknown-local-server-setting",
        ),
        pytest.param(
            "[llm]\ncontext_tokens = 2048\nmax_tokens = 2000\n",
            ["llm.context_tokens = 2048", "leaves 48 tokens", "llm.max_tokens = 2000", "512"],
            id="no-room-for-the-prompt",
        ),
        pytest.param(
            "[llm]\ncontext_tokens_by_model = {tiny = 1024}\nmax_tokens = 1000\n",
            ["llm.context_tokens_by_model.tiny = 1024", "leaves 24 tokens"],
            id="no-room-for-one-models-prompt",
        ),
        pytest.param(
            '[llm]\ncontext_tokens_by_model = {tiny = "4k"}\n',
            ["llm.context_tokens_by_model.tiny", "'4k'", "whole number of tokens"],
            id="window-not-a-number",
        ),
        pytest.param(
            "[llm]\ncontext_tokens_by_model = {tiny = 100}\n",
            ["llm.context_tokens_by_model.tiny", "100", ">= 256"],
            id="window-too-small",
        ),
        pytest.param(
            "[llm]\ncontext_tokens = 100\n", ["llm.context_tokens", "100", ">= 256"], id="tiny"
        ),
    ],
)
def test_model_settings_that_cannot_work_are_refused(tmp_path, toml, needles):
    assert_mentions(error_of(tmp_path, toml), *needles)


def test_file_error_names_the_file(tmp_path):
    message = error_of(tmp_path, "[agent]\nsed = 1\n")

    assert str(tmp_path / "hephaestus.toml") in message


def test_api_key_in_config_points_to_api_key_env_without_echoing_the_key(tmp_path):
    message = error_of(tmp_path, f'[llm]\napi_key = "{SECRET}"\n')

    assert_mentions(message, "llm.api_key", "api_key_env")
    assert SECRET not in message


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        pytest.param(
            {"HEPHAESTUS_AGENT_SEEDS": "1"},
            ["HEPHAESTUS_AGENT_SEEDS", "HEPHAESTUS_AGENT_SEED", "HEPHAESTUS_LLM_MODELS"],
            id="unknown-variable-lists-allowed-names",
        ),
        pytest.param(
            {"HEPHAESTUS_COLOR": "1"},
            ["HEPHAESTUS_COLOR", "HEPHAESTUS_LOGGING_LEVEL"],
            id="unknown-section-variable",
        ),
        pytest.param(
            {"HEPHAESTUS_AGENT_SEED": "abc"},
            ["HEPHAESTUS_AGENT_SEED", "'abc'", "agent.seed", "integer"],
            id="bad-int",
        ),
        pytest.param(
            {"HEPHAESTUS_AGENT_SEED": "1.5"},
            ["HEPHAESTUS_AGENT_SEED", "'1.5'", "agent.seed", "integer"],
            id="fraction-for-int",
        ),
        pytest.param(
            {"HEPHAESTUS_LLM_TEMPERATURE": "warm"},
            ["HEPHAESTUS_LLM_TEMPERATURE", "'warm'", "llm.temperature", "number"],
            id="bad-float",
        ),
        pytest.param(
            {"HEPHAESTUS_LLM_TEMPERATURE": "nan"},
            ["llm.temperature", "nan", "number"],
            id="nan-float",
        ),
        pytest.param(
            {"HEPHAESTUS_AGENT_SEED": "-3"}, ["agent.seed", "-3", ">= 0"], id="env-below-min"
        ),
        pytest.param(
            {"HEPHAESTUS_AGENT_PROVIDER": "claude"},
            ["agent.provider", "'claude'", "offline", "openai"],
            id="env-bad-choice",
        ),
        pytest.param(
            {"HEPHAESTUS_LLM_MODELS": "brain=gpt"},
            ["HEPHAESTUS_LLM_MODELS", "'brain=gpt'", "llm.models", "inline TOML table"],
            id="bad-dict",
        ),
        pytest.param(
            {"HEPHAESTUS_LLM_MODELS": '["gpt"]'},
            ["llm.models", "['gpt']", "table"],
            id="dict-that-is-a-list",
        ),
    ],
)
def test_env_error_names_variable_value_and_what_is_allowed(tmp_path, env, needles):
    assert_mentions(error_of(tmp_path, env=env), *needles)


def test_api_key_as_env_variable_is_refused_without_echoing_it(tmp_path):
    message = error_of(tmp_path, env={"HEPHAESTUS_LLM_API_KEY": SECRET})

    assert_mentions(message, "HEPHAESTUS_LLM_API_KEY", "HEPHAESTUS_LLM_API_KEY_ENV")
    assert SECRET not in message


def test_every_field_has_an_env_variable(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(env={"HEPHAESTUS_NOPE": "1"})

    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"HEPHAESTUS_{section.upper()}_{f.name.upper()}" in str(info.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# -- overrides in code ------------------------------------------------------------------------
def test_overrides_are_validated_like_file_values():
    with pytest.raises(ConfigError, match=r"agent\.seed"):
        Config().with_overrides(agent={"seed": -1})


def test_overrides_keep_the_other_values():
    config = Config().with_overrides(agent={"seed": 3}, llm={"max_tokens": 10})

    assert (config.agent.seed, config.llm.max_tokens) == (3, 10)
    assert config.agent.provider == Config().agent.provider
    assert Config().agent.seed == 0  # the original is untouched


def test_config_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().agent.seed = 5  # type: ignore[misc]


# -- describe masks the key -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("api_key_env", "env", "shown"),
    [
        pytest.param("MY_API_KEY", {"MY_API_KEY": SECRET}, "****", id="set"),
        pytest.param("MY_API_KEY", {}, "(not set)", id="not-set"),
        pytest.param("MY_API_KEY", {"MY_API_KEY": ""}, "(not set)", id="set-but-empty"),
        pytest.param("", {"MY_API_KEY": SECRET}, "(none)", id="no-auth"),
    ],
)
def test_describe_masks_the_api_key(api_key_env, env, shown):
    config = Config().with_overrides(llm={"api_key_env": api_key_env})

    described = describe(config, env=env)

    assert described["llm"]["api_key"] == shown
    assert described["llm"]["api_key_env"] == api_key_env


def test_api_key_never_appears_in_any_display(tmp_path):
    env = {"OPENROUTER_API_KEY": SECRET, "HEPHAESTUS_AGENT_PROVIDER": "openai"}
    config = load_config(env=env)

    outputs = [
        json.dumps(describe(config, env=env)),
        str(describe(config, env=env)),
        repr(config),
        str(config),
        json.dumps(to_dict(config)),
    ]

    assert not [o for o in outputs if SECRET in o]


def test_describe_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("HEPHAESTUS_TEST_KEY", SECRET)
    config = Config().with_overrides(llm={"api_key_env": "HEPHAESTUS_TEST_KEY"})

    described = describe(config)

    assert described["llm"]["api_key"] == "****"
    assert SECRET not in json.dumps(described)


def test_describe_shows_every_section_and_does_not_change_the_config():
    config = Config()

    described = describe(config, env={})
    described["agent"]["seed"] = 99

    assert set(SECTIONS) <= set(described)
    assert config.agent.seed == 0


def test_the_shipped_example_config_loads_and_says_what_it_shows():
    example = Path(__file__).resolve().parents[2] / "examples" / "hephaestus.toml"
    config = load_config(example, env={})
    assert config.agent.provider == "openai"
    assert config.llm.models["brain"] == ["anthropic/claude-3.5-sonnet", "openai/gpt-4o-mini"]
    assert config.validation.strategies["DISCARD"] == []


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: p.write_bytes(b'[agent]\nprovider = "caf\xe9"\n'), "is not UTF-8 text \\(byte"),
        (lambda p: p.mkdir(), "is a directory; pass a TOML file"),
        (lambda p: p.write_bytes(b"#" * (1024 * 1024 + 1)), "is larger than 1048576 bytes"),
    ],
    ids=["latin-1", "a-directory", "oversized"],
)
def test_a_config_file_that_cannot_be_read_as_toml_is_a_config_error(tmp_path, write, message):
    path = tmp_path / "hephaestus.toml"
    write(path)

    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


# -- config show as TOML ---------------------------------------------------------------------------
def test_the_config_renders_as_toml_that_reads_back_the_same():
    sections = {
        "llm": {
            "provider": "openai",
            "models": {"brain": ["a/b", 'quote"d'], "code_reviewer": []},
            "request_timeout": 60.0,
            "headers": {},
        },
        "agent": {"allow_test_edits": False, "max_patch_files": 5, "review_mode": "always"},
    }

    assert tomllib.loads(to_toml(sections)) == sections
