"""Every stage and every reason code of a cycle, produced for real.

The agent talks to a scripted OpenAI-compatible server over real HTTP, patches a real git
worktree, runs the sample project's real pytest suite, and records to a real SQLite memory.
Whatever the outcome, the target repository is byte-identical unless the cycle succeeded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from factories import (
    PRICING,
    Reply,
    ScriptedLLMServer,
    answer_by_task,
    git,
    make_agent,
    make_config,
    make_target_repo,
    objective,
    openai_config,
    plan,
    replace,
    repo_snapshot,
    task_of,
)

from hephaestus.agent.memory import Memory
from hephaestus.agent.models import Outcome, Reason, Stage

APPROVE = json.dumps({"approved": True, "feedback": "looks fine"})


def run_one(server: ScriptedLLMServer, repo: Path, **config_sections):
    runner = make_agent(openai_config(server, **config_sections), repo)
    try:
        return runner, runner.run_cycle()
    finally:
        runner.close()


def assert_untouched(repo: Path, before: dict) -> None:
    assert repo_snapshot(repo) == before
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_offline_cycle_commits_a_validated_change(sample_repo):
    head = git(sample_repo, "rev-parse", "HEAD").strip()
    runner = make_agent(make_config(), sample_repo)
    result = runner.run_cycle()
    runner.close()

    assert (result.outcome, result.reason) == (Outcome.SUCCEEDED, Reason.COMMITTED)
    assert git(sample_repo, "rev-parse", "HEAD~1").strip() == head
    assert git(sample_repo, "rev-parse", "HEAD").strip() == result.commit_sha
    changed = git(sample_repo, "show", "--name-only", "--format=", "HEAD").split()
    assert changed == list(result.files)
    assert git(sample_repo, "status", "--porcelain") == ""
    assert list(result.durations) == [s.value for s in Stage]
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"], cwd=sample_repo, capture_output=True, text=True
    )
    assert tests.returncode == 0, tests.stdout


def test_a_commit_touches_only_the_files_of_the_plan(sample_repo):
    (sample_repo / "notes.txt").write_text("operator's untracked work\n")
    (sample_repo / "README.md").write_text("operator's uncommitted edit\n")
    runner = make_agent(make_config(), sample_repo)
    result = runner.run_cycle()
    runner.close()

    assert result.outcome is Outcome.SUCCEEDED
    assert git(sample_repo, "show", "--name-only", "--format=", "HEAD").split() == list(
        result.files
    )
    assert (sample_repo / "notes.txt").read_text() == "operator's untracked work\n"
    assert (sample_repo / "README.md").read_text() == "operator's uncommitted edit\n"
    assert sorted(git(sample_repo, "status", "--porcelain").splitlines()) == [
        " M README.md",
        "?? notes.txt",
    ]


@pytest.mark.parametrize(
    ("answers", "reason", "last_stage"),
    [
        ({"next_objective": json.dumps({"objective": None})}, Reason.NO_OBJECTIVE, Stage.OBJECTIVE),
        ({"next_objective": "I think you should add tests."}, Reason.INVALID_PLAN, Stage.OBJECTIVE),
        (
            {"patch_plan": "Sure! I would refactor the pricing module."},
            Reason.INVALID_PLAN,
            Stage.PLAN,
        ),
        ({"patch_plan": plan()}, Reason.INVALID_PLAN, Stage.PLAN),
        (
            {"review": json.dumps({"approved": False, "feedback": "too risky"})},
            Reason.REVIEW_REJECTED,
            Stage.REVIEW,
        ),
        ({"review": json.dumps({"approved": "maybe"})}, Reason.INVALID_PLAN, Stage.REVIEW),
        ({"strategy": json.dumps({"strategy": "DISCARD"})}, Reason.DISCARDED, Stage.STRATEGY),
        ({"strategy": json.dumps({"strategy": "YOLO"})}, Reason.INVALID_PLAN, Stage.STRATEGY),
    ],
)
def test_decisions_of_the_models_end_the_cycle_cleanly(
    llm_server, sample_repo, answers, reason, last_stage
):
    llm_server._default = answer_by_task(**answers)
    before = repo_snapshot(sample_repo)
    _, result = run_one(llm_server, sample_repo)

    assert (result.outcome, result.reason) == (reason.outcome, reason)
    assert list(result.durations)[-2:] == [last_stage.value, Stage.RECORD.value]
    assert_untouched(sample_repo, before)


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        (replace("this block is not in the file", "x = 1\n"), Reason.PATCH_CONFLICT),
        (replace("import", "import"), Reason.PATCH_CONFLICT),  # ambiguous: many matches
        (replace("x", "y", path="../outside.py"), Reason.UNSAFE_PATH),
        (replace("x", "y", path="/etc/passwd"), Reason.UNSAFE_PATH),
        (
            {"file_path": ".git/config", "operation": "CREATE_FILE", "content": "[core]\n"},
            Reason.UNSAFE_PATH,
        ),
        (replace("def apply_discount(", "def apply_discount(("), Reason.SYNTAX_ERROR),
        (replace("def apply_discount(", "def apply_discount("), Reason.NO_CHANGE),
    ],
)
def test_bad_patches_fail_before_anything_reaches_the_target(
    llm_server, sample_repo, patch, reason
):
    llm_server._default = answer_by_task(
        next_objective=objective(), patch_plan=plan(patch), review=APPROVE
    )
    before = repo_snapshot(sample_repo)
    _, result = run_one(llm_server, sample_repo)

    assert result.reason is reason, result.detail
    assert_untouched(sample_repo, before)


def test_a_patch_that_breaks_the_tests_is_tests_failed(llm_server, sample_repo):
    source = (sample_repo / PRICING).read_text()
    assert "return" in source
    breaking = replace("def apply_discount(", "def _unused(): pass\n\n\ndef apply_discount_(")
    llm_server._default = answer_by_task(next_objective=objective(), patch_plan=plan(breaking))
    before = repo_snapshot(sample_repo)
    _, result = run_one(llm_server, sample_repo)

    assert result.reason is Reason.TESTS_FAILED, result.detail
    assert "pytest exited with" in result.detail
    assert_untouched(sample_repo, before)


def test_a_hanging_test_suite_is_a_timeout(llm_server, tmp_path):
    repo = make_target_repo(
        tmp_path / "slow",
        {
            "slow/__init__.py": '"""Slow."""\n\nVALUE = 1\n',
            "tests/test_slow.py": "import time\n\ndef test_slow():\n    time.sleep(30)\n",
        },
    )
    llm_server._default = answer_by_task(
        next_objective=objective("Bump VALUE", "slow/__init__.py"),
        patch_plan=plan(replace("VALUE = 1", "VALUE = 2", path="slow/__init__.py")),
        strategy=json.dumps({"strategy": "SYNTAX_AND_PYTEST"}),
    )
    before = repo_snapshot(repo)
    _, result = run_one(llm_server, repo, validation={"pytest_timeout": 1.0})

    assert result.reason is Reason.TIMEOUT
    assert "did not finish within 1s" in result.detail  # cut, not waited out (it sleeps 30 s)
    assert_untouched(repo, before)


def test_every_model_failing_is_llm_error(llm_server, sample_repo):
    llm_server._default = lambda _request: Reply(status=500, body={"error": "boom"})
    _, result = run_one(llm_server, sample_repo, models={"brain": ["model-a", "model-b"]})
    assert result.reason is Reason.LLM_ERROR
    # three attempts each (stamina retries HTTP 500), then the fallback model
    assert llm_server.models_requested() == ["model-a"] * 3 + ["model-b"] * 3


def test_an_objective_that_keeps_failing_is_not_retried_forever(llm_server, sample_repo):
    llm_server._default = answer_by_task(
        next_objective=objective("Rewrite pricing"), patch_plan="no plan today"
    )
    config = openai_config(llm_server, agent={"max_objective_failures": 2})
    runner = make_agent(config, sample_repo)
    reasons = [runner.run_cycle().reason for _ in range(3)]
    runner.close()
    assert reasons == [Reason.INVALID_PLAN, Reason.INVALID_PLAN, Reason.REPEATED_OBJECTIVE]
    brain_prompt = llm_server.requests[-1].body["messages"][-1]["content"]
    assert "Rewrite pricing" in brain_prompt  # the model is told what is blocked


def test_rules_reject_a_plan_touching_too_many_files(llm_server, sample_repo):
    files = ["inventory/pricing.py", "inventory/stock.py"]
    llm_server._default = answer_by_task(
        next_objective=objective(),
        patch_plan=plan(*[replace("import", "import", path=p) for p in files]),
    )
    _, result = run_one(llm_server, sample_repo, agent={"max_patch_files": 1})
    assert result.reason is Reason.REVIEW_REJECTED
    assert "agent.max_patch_files" in result.detail
    tasks = [task_of(r.body) for r in llm_server.requests]
    assert "review" not in tasks  # the rule decided; the model was not asked


def test_the_target_moving_during_a_cycle_is_a_patch_conflict(sample_repo):
    runner = make_agent(make_config(), sample_repo)

    def commit_meanwhile(result, stage):
        if stage is Stage.COMMIT:
            (sample_repo / "CHANGELOG").write_text("someone else\n")
            git(sample_repo, "add", "CHANGELOG")
            git(sample_repo, "commit", "-q", "-m", "concurrent change")

    runner.on_stage = commit_meanwhile
    result = runner.run_cycle()
    runner.close()
    assert result.reason is Reason.PATCH_CONFLICT
    assert "HEAD moved" in result.detail
    assert git(sample_repo, "log", "-1", "--format=%s").strip() == "concurrent change"
    assert git(sample_repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_local_changes_in_a_touched_file_are_never_overwritten(sample_repo):
    runner = make_agent(make_config(), sample_repo)
    edits = {}

    def edit_touched_file(result, stage):
        if stage is Stage.COMMIT:
            path = sample_repo / result.files[0]
            path.write_text(path.read_text() + "# operator edit\n")
            edits[result.files[0]] = path.read_text()

    runner.on_stage = edit_touched_file
    head = git(sample_repo, "rev-parse", "HEAD")
    result = runner.run_cycle()
    runner.close()
    assert result.reason is Reason.PATCH_CONFLICT
    assert "local changes" in result.detail
    assert git(sample_repo, "rev-parse", "HEAD") == head
    for path, text in edits.items():
        assert (sample_repo / path).read_text() == text


def test_an_unexpected_exception_is_internal_error_and_recorded(sample_repo, monkeypatch):
    import hephaestus.agent.stages as stages

    def broken(*_args, **_kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(stages, "apply_plan", broken)  # a fault no real input triggers
    before = repo_snapshot(sample_repo)
    runner = make_agent(make_config(), sample_repo)
    result = runner.run_cycle()
    rows = runner.memory.recent(1)
    runner.close()
    assert result.reason is Reason.INTERNAL_ERROR
    assert "simulated bug" in result.detail
    assert rows[0]["reason"] == "internal_error" and rows[0]["status"] == "finished"
    assert_untouched(sample_repo, before)


def test_ctrl_c_in_a_stage_records_the_cycle_as_aborted_and_reraises(sample_repo):
    runner = make_agent(make_config(), sample_repo)

    def interrupt(result, stage):
        if stage is Stage.VALIDATE:
            raise KeyboardInterrupt

    runner.on_stage = interrupt
    before = repo_snapshot(sample_repo)
    with pytest.raises(KeyboardInterrupt):
        runner.run_cycle()
    row = runner.memory.recent(1)[0]
    runner.close()
    assert (row["outcome"], row["reason"]) == ("aborted", "shutdown")
    assert_untouched(sample_repo, before)
    assert not any((sample_repo / ".hephaestus" / "workspaces").iterdir())


def test_a_cycle_left_running_by_a_dead_process_is_marked_interrupted(sample_repo):
    runner = make_agent(make_config(), sample_repo)
    runner.run_cycle()
    runner.close()
    db = sample_repo / ".hephaestus" / "memory.db"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    memory = Memory(db)
    memory._conn.execute("UPDATE cycles SET status='running', outcome=NULL, pid=?", (int(dead),))
    memory.close()

    make_agent(make_config(), sample_repo).close()

    memory = Memory(db)
    row = memory.recent(1)[0]
    memory.close()
    assert (row["outcome"], row["reason"], row["status"]) == ("aborted", "interrupted", "finished")


def test_every_cycle_is_one_memory_row_with_its_usage(llm_server, sample_repo):
    llm_server._default = answer_by_task()
    _runner, result = run_one(llm_server, sample_repo)
    memory = Memory(sample_repo / ".hephaestus" / "memory.db")
    row = memory.find(result.correlation_id)
    memory.close()
    assert row["outcome"] == "succeeded" and row["commit_sha"] == result.commit_sha
    assert row["llm_calls"] == 4 and row["input_tokens"] == 4 * 11
    assert row["provider"] == "openai" and row["model"] == "model-a"
    # the record stage writes the row, so its own duration is the one it cannot hold
    assert set(row["durations"]) == {s.value for s in Stage} - {"record"}
