"""The ``hephaestus`` command end to end, as a user runs it: a real process on a real repo."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from factories import git, make_target_repo, run_cli

pytestmark = pytest.mark.slow


hephaestus = run_cli


def test_run_five_cycles_commits_changes_whose_tests_pass(sample_repo):
    start = git(sample_repo, "rev-parse", "HEAD").strip()
    proc = hephaestus("run", "--project", str(sample_repo), "--cycles", "5")

    assert proc.returncode == 0, proc.stderr
    assert "succeeded" in proc.stdout and "5/5 cycles succeeded" in proc.stdout
    commits = git(sample_repo, "rev-list", f"{start}..HEAD").split()
    assert len(commits) == 5
    subjects = git(sample_repo, "log", "--format=%s", f"{start}..HEAD").splitlines()
    assert all(len(s) <= 72 and ":" in s for s in subjects)
    assert git(sample_repo, "status", "--porcelain") == ""
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"], cwd=sample_repo, capture_output=True, text=True
    )
    assert tests.returncode == 0, tests.stdout
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert sum(e["event"] == "cycle finished" for e in events) == 5


def test_a_failed_cycle_leaves_head_and_status_untouched(sample_repo):
    head = git(sample_repo, "rev-parse", "HEAD")
    proc = hephaestus(
        "run", "--project", str(sample_repo), "--objective", "Rewrite the warehouse in Rust"
    )

    assert proc.returncode == 0, proc.stderr
    assert "failed" in proc.stdout and "invalid_plan" in proc.stdout
    assert git(sample_repo, "rev-parse", "HEAD") == head
    assert git(sample_repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_rejected_cycle_leaves_head_and_status_untouched(tmp_path):
    repo = make_target_repo(tmp_path / "clean", {"clean.py": '"""Nothing to improve."""\n'})
    head = git(repo, "rev-parse", "HEAD")
    proc = hephaestus("run", "--project", str(repo), "--cycles", "2")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("no_objective") >= 2
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_demo_makes_real_commits_in_a_fresh_repo(tmp_path):
    workdir = tmp_path / "demo"
    proc = hephaestus("demo", "--cycles", "3", "--workdir", str(workdir))

    assert proc.returncode == 0, proc.stderr
    assert f"demo repository: {workdir}" in proc.stdout
    assert len(git(workdir, "rev-list", "HEAD").split()) == 4  # the import + 3 cycles
    again = hephaestus("demo", "--workdir", str(workdir))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_history_lists_cycles_with_their_ids(sample_repo):
    hephaestus("run", "--project", str(sample_repo), "--cycles", "2")
    proc = hephaestus("history", "--project", str(sample_repo), "--json")

    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["cycle_number"] for r in rows] == [2, 1]
    assert all(r["correlation_id"] and r["outcome"] == "succeeded" for r in rows)
    table = hephaestus("history", "--project", str(sample_repo), "--limit", "1")
    assert "Recent cycles" in table.stdout


def test_history_without_memory_says_so(tmp_path):
    repo = make_target_repo(tmp_path / "fresh", {"a.py": "x = 1\n"})
    proc = hephaestus("history", "--project", str(repo))
    assert proc.returncode == 0 and "no cycles recorded yet" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--project", "{tmp}"), "is not a git repository"),
        (("run", "--project", "{tmp}/missing"), "is not a directory"),
        (("run", "--cycles", "0"), "must be >= 1"),
        (("run", "--cycles", "2", "--correlation-id", "abc"), "use it with --cycles 1"),
        (("run", "--provider", "magic"), "invalid choice"),
        (("run", "--config", "{tmp}/nope.toml"), "does not exist"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(tmp_path, args, message):
    proc = hephaestus(*(a.format(tmp=tmp_path) for a in args), cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_a_bad_config_value_names_key_value_and_allowed(tmp_path, sample_repo):
    config = tmp_path / "hephaestus.toml"
    config.write_text('[agent]\nprovider = "gpt"\n')
    proc = hephaestus("run", "--project", str(sample_repo), "--config", str(config))
    assert proc.returncode == 2
    assert "agent.provider = 'gpt'" in proc.stderr and "offline, openai" in proc.stderr


def test_openai_provider_without_its_key_is_a_config_error(sample_repo):
    env = {"HEPHAESTUS_LLM_API_KEY_ENV": "HEPHAESTUS_TEST_MISSING_KEY"}
    proc = hephaestus("run", "--project", str(sample_repo), "--provider", "openai", env=env)
    assert proc.returncode == 2
    assert "$HEPHAESTUS_TEST_MISSING_KEY" in proc.stderr


def test_config_show_masks_the_key_and_round_trips_as_toml(tmp_path):
    import tomllib

    env = {
        "HEPHAESTUS_LLM_API_KEY_ENV": "MY_KEY",
        "MY_KEY": "sk-secret-value",
        "HEPHAESTUS_AGENT_SEED": "7",
    }
    proc = hephaestus("config", "show", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "sk-secret-value" not in proc.stdout
    shown = tomllib.loads(proc.stdout)
    assert shown["llm"]["api_key"] == "****" and shown["agent"]["seed"] == 7


def test_help_exists_for_every_command():
    for command in ("run", "demo", "serve", "history", "config"):
        proc = hephaestus(command, "--help")
        assert proc.returncode == 0 and "usage: hephaestus" in proc.stdout


# -- one line and exit 2 for what an operator can fix -----------------------------------------
def assert_one_line_usage_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hephaestus: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b'[agent]\nprovider = "caf\xe9"\n'), "is not UTF-8 text"),
        (lambda p: p.mkdir(), "is a directory; pass a TOML file"),
        (
            lambda p: p.write_text('[validation]\npytest_args = ["-q", 5]\n'),
            "validation.pytest_args[1] = 5 must be a string",
        ),
        (lambda p: p.write_text('[validation]\nsandbox = "docker"\n'), "validation.sandbox"),
    ],
    ids=["non-utf8", "a-folder", "list-item-type", "unknown-sandbox"],
)
def test_a_config_that_cannot_be_used_is_one_line_and_exit_2(tmp_path, sample_repo, make, message):
    config = tmp_path / "hephaestus.toml"
    make(config)

    proc = hephaestus("run", "--project", sample_repo, "--config", config)

    assert_one_line_usage_error(proc, message)


@pytest.mark.parametrize("correlation_id", ["../../victim", "abc\n", "-dash-first", "a/b", ""])
def test_a_correlation_id_outside_the_rule_is_refused_before_anything_runs(
    tmp_path, sample_repo, correlation_id
):
    before = sorted(p.name for p in tmp_path.iterdir())

    proc = hephaestus("run", "--project", sample_repo, f"--correlation-id={correlation_id}")

    assert_one_line_usage_error(proc, "--correlation-id")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no worktree outside
    assert not (sample_repo / ".hephaestus" / "memory.db").exists()


@pytest.mark.parametrize("where", ["a port in use", "an invalid host"])
def test_serve_that_cannot_listen_is_one_line_and_exit_2(sample_repo, where):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        host = "127.0.0.1" if where == "a port in use" else "no such host!"
        proc = hephaestus(
            "serve", "--project", sample_repo, "--host", host, "--port", str(port), timeout=120
        )

    assert_one_line_usage_error(proc, f"cannot listen on {host}:{port}")
    history = hephaestus("history", "--project", sample_repo, "--json")
    assert history.returncode == 0 and history.stdout == ""  # no cycle ran


def test_without_bwrap_the_agent_warns_once_naming_the_risk_and_the_package(tmp_path, sample_repo):
    import os
    import shutil

    bin_dir = tmp_path / "bin"  # git, and nothing else on PATH: no bwrap
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))
    env = {"PATH": str(bin_dir)}

    proc = hephaestus("run", "--project", sample_repo, env=env)
    refused = hephaestus(
        "run", "--project", sample_repo, env={**env, "HEPHAESTUS_VALIDATION_SANDBOX": "bwrap"}
    )

    assert proc.returncode == 0, proc.stderr
    warnings = [
        json.loads(line)
        for line in proc.stderr.splitlines()
        if line.startswith("{") and "not sandboxed" in line
    ]
    assert len(warnings) == 1
    assert warnings[0]["level"] == "warning"
    assert "bubblewrap (bwrap) is not installed" in warnings[0]["event"]
    assert "runs on the host" in warnings[0]["event"]
    assert "install the Debian package bubblewrap" in warnings[0]["event"]
    assert_one_line_usage_error(refused, "install the Debian package bubblewrap")
    assert os.environ.get("PATH")  # the test's own PATH is untouched
