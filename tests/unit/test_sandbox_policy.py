"""What the tests of a patch may see and where they run: the environment and the sandbox.

The environment is built from an allowlist and never carries a secret, sandboxed or not;
``validation.sandbox`` resolves to bubblewrap when it is there and works, and says plainly
(or refuses, when bwrap was asked for) when it is not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import require_binary

from hephaestus.agent.sandbox import (
    BWRAP_PACKAGE,
    Sandbox,
    SandboxUnavailable,
    is_secret_name,
    resolve_sandbox,
    validation_env,
)
from hephaestus.config import ConfigError

HOST = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_TIME": "C",
    "HOME": "/home/operator",
    "OPENROUTER_API_KEY": "sk-or-1",
    "MY_LLM": "sk-named-by-config",
    "GITHUB_TOKEN": "ghp_1",
    "AWS_SECRET_ACCESS_KEY": "aws",
    "DB_PASSWORD": "pw",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
    "PYTEST_ADDOPTS": "--no-such-option",
    "DJANGO_SETTINGS_MODULE": "site.settings",
    "VIRTUAL_ENV": "/opt/venv",
}


def test_the_tests_see_an_allowlist_of_the_environment_and_what_the_agent_adds():
    env = validation_env(HOST, {"TRACEPARENT": "00-abc-def-01", "HEPHAESTUS_SPAN_FILE": "/t/s"})

    assert env == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_TIME": "C",
        "VIRTUAL_ENV": "/opt/venv",
        "TRACEPARENT": "00-abc-def-01",
        "HEPHAESTUS_SPAN_FILE": "/t/s",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def test_pass_env_adds_names_but_never_a_secret_or_the_configured_key():
    env = validation_env(
        HOST,
        {},
        secret="MY_LLM",
        passed=["DJANGO_SETTINGS_MODULE", "MY_LLM", "GITHUB_TOKEN", "DB_PASSWORD"],
    )

    assert env["DJANGO_SETTINGS_MODULE"] == "site.settings"
    assert {"MY_LLM", "GITHUB_TOKEN", "DB_PASSWORD"}.isdisjoint(env)


def test_a_secret_the_agent_itself_would_add_is_dropped_too():
    env = validation_env({}, {"SERVICE_TOKEN": "t", "HEPHAESTUS_PROBE": "ok"}, secret="X")

    assert env == {"HEPHAESTUS_PROBE": "ok", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("OPENAI_API_KEY", True),
        ("api_key", True),
        ("GH_TOKEN", True),
        ("CLIENT_SECRET", True),
        ("PGPASSWORD", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("KEYBOARD_LAYOUT", False),
        ("PATH", False),
        ("TOKENIZERS_PARALLELISM", False),
    ],
)
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_none_runs_on_the_host_and_says_so():
    sandbox = resolve_sandbox("none")

    assert not sandbox.isolated
    assert sandbox.command(["python", "-V"], workdir=Path("/w")) == ["python", "-V"]
    assert sandbox.status()["status"] == "degraded"
    assert "on the host" in sandbox.status()["reason"]


def test_auto_without_bwrap_falls_back_to_the_host_naming_the_risk_and_the_package():
    sandbox = resolve_sandbox("auto", which=lambda _name: None)

    assert sandbox.mode == "none"
    assert "bubblewrap (bwrap) is not installed" in sandbox.reason
    assert f"install the Debian package {BWRAP_PACKAGE}" in sandbox.reason


def test_bwrap_asked_for_but_missing_is_a_config_error_with_the_fix():
    with pytest.raises(SandboxUnavailable) as info:
        resolve_sandbox("bwrap", which=lambda _name: None)

    assert isinstance(info.value, ConfigError)
    assert "apt-get install bubblewrap" in str(info.value)
    assert 'validation.sandbox = "none"' in str(info.value)


def test_a_bwrap_that_cannot_start_a_sandbox_is_not_used(tmp_path):
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'No permissions to create new namespace' >&2\nexit 1\n")
    broken.chmod(0o755)

    sandbox = resolve_sandbox("auto", which=lambda _name: str(broken))
    with pytest.raises(SandboxUnavailable, match="No permissions to create new namespace"):
        resolve_sandbox("bwrap", which=lambda _name: str(broken))

    assert sandbox.mode == "none"
    assert "cannot start a sandbox here" in sandbox.reason


def test_the_bwrap_command_isolates_and_binds_the_most_specific_path_last(tmp_path):
    require_binary("bwrap")
    sandbox = resolve_sandbox("bwrap")
    target = tmp_path / "target"
    worktree = target / ".hephaestus" / "workspaces" / "w"
    worktree.mkdir(parents=True)
    (target / ".git").mkdir()
    span_file = tmp_path / "spans.jsonl"
    span_file.write_text("")

    argv = sandbox.command(
        ["python", "-m", "pytest"],
        workdir=worktree,
        writable=[span_file],
        hidden=[target],
        readable=[target / ".git"],
    )

    assert argv[0] == shutil.which("bwrap") and argv[-4:] == ["--", "python", "-m", "pytest"]
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[1:4] == ["--ro-bind", "/", "/"]
    mounts = [(argv[i], argv[i + 1]) for i, a in enumerate(argv) if a.startswith("--")]
    order = [path for option, path in mounts if option in ("--tmpfs", "--ro-bind", "--bind")]
    hidden_at = order.index(str(target.resolve()))
    assert order.index(str((target / ".git").resolve())) > hidden_at
    assert order.index(str(worktree.resolve())) > hidden_at
    assert ("--bind", str(span_file.resolve())) in mounts
    assert ("--tmpfs", "/tmp") in mounts
    assert argv[argv.index("--chdir") + 1] == str(worktree)


def test_home_and_tmpdir_are_private_in_the_sandbox_and_the_agents_otherwise(tmp_path):
    host = {"HOME": "/home/operator", "TMPDIR": "/var/tmp/op"}

    assert resolve_sandbox("none").private_env(host) == host
    assert resolve_sandbox("none").private_env({}) == {}
    bwrap = Sandbox("bwrap", bwrap="/usr/bin/bwrap")
    assert bwrap.private_env(host) == {"HOME": "/tmp", "TMPDIR": "/tmp"}
