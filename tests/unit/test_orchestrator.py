"""The cycle's stages one at a time, and the runner that sequences them.

Each stage takes what it needs and returns what the next one takes; a stage that decides the
cycle ends without a change raises ``CycleError`` with its reason. Real git, real memory and
the offline provider: nothing here needs a network.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import (
    git,
    make_agent,
    make_config,
    make_target_repo,
    repo_snapshot,
    start_conflicting_merge,
)

from hephaestus.agent import stages
from hephaestus.agent.build import build_models
from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.memory import Memory
from hephaestus.agent.models import (
    CycleAborted,
    CycleError,
    CycleResult,
    Objective,
    Operation,
    Patch,
    PatchPlan,
    Reason,
    Stage,
    StrategyChoice,
)
from hephaestus.agent.oracle import TestOracle as Oracle  # not a test class
from hephaestus.agent.recovery import CommitJournal
from hephaestus.agent.sandbox import Sandbox
from hephaestus.agent.workspace import Workspace
from hephaestus.llm.client import RoleModels, usage_scope

CALC = "def add(a, b):\n    return a + b\n"
FILES = {"calc.py": CALC, "README.md": "calc\n"}
STAGE_ORDER = [s.value for s in Stage]


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return make_target_repo(tmp_path / "target", FILES)


@pytest.fixture
def repo(target: Path) -> GitRepo:
    opened = GitRepo.open(target)
    opened.ignore_agent_dir()
    opened.agent_dir.mkdir()  # where the commit journal lives
    return opened


@pytest.fixture
def workspace(repo: GitRepo, tmp_path: Path) -> Iterator[Workspace]:
    created = Workspace.create(repo, tmp_path / "workspaces", "cycle-1")
    yield created
    created.discard()


@pytest.fixture
def models() -> Iterator[RoleModels]:
    built = build_models(make_config())
    yield built
    built.close()


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    opened = Memory(tmp_path / "memory.db")
    yield opened
    opened.close()


def replace_in_calc(old: str, new: str) -> PatchPlan:
    return PatchPlan("edit", (Patch("calc.py", Operation.REPLACE, content=new, block=old),))


def reason_of(info: pytest.ExceptionInfo[CycleError]) -> Reason:
    return info.value.reason


def record(memory: Memory, objective: str, reason: Reason, number: int) -> None:
    result = CycleResult(correlation_id=f"c-{number}", cycle_number=number, started_at=number)
    memory.start_cycle(result)
    result.objective = Objective(objective)
    result.end(reason)
    result.finished_at = number + 0.5
    memory.finish_cycle(result)


# -- scan ---------------------------------------------------------------------------------------
def test_an_idle_repository_is_fingerprinted_as_the_cycle_starts(repo):
    fingerprint = stages.require_idle(repo)

    assert fingerprint.changes(repo) == []


def test_a_repository_in_the_middle_of_a_merge_is_refused(target, repo):
    start_conflicting_merge(target)

    with pytest.raises(CycleError) as info:
        stages.require_idle(repo)

    assert (reason_of(info), info.value.error_type) == (Reason.PATCH_CONFLICT, "busy_repo")


def test_the_scan_lists_the_workspace_and_blocks_objectives_that_keep_failing(workspace, memory):
    for number in (1, 2):
        record(memory, "Rewrite calc", Reason.TESTS_FAILED, number)
    record(memory, "Add a docstring", Reason.REVIEW_REJECTED, 3)
    agent = make_config(agent={"max_objective_failures": 2}).agent

    manifest = stages.scan_target(workspace, memory, agent)

    assert {f.path for f in manifest.files} == {"calc.py", "README.md"}
    assert manifest.blocked_objectives == ("Rewrite calc",)
    assert [c["objective"] for c in manifest.recent_cycles] == [
        "Add a docstring",
        "Rewrite calc",
        "Rewrite calc",
    ]


# -- objective ----------------------------------------------------------------------------------
def test_an_operator_objective_is_taken_as_given_without_asking_a_model(models, workspace, memory):
    manifest = stages.scan_target(workspace, memory, make_config().agent)

    with usage_scope() as usage:
        objective = stages.choose_objective(models, manifest, "  fix the\n  bug ", None)

    assert (objective.text, objective.source) == ("fix the bug", "operator")
    assert usage.calls == 0


def test_without_an_operator_objective_the_brain_proposes_one(models, workspace, memory):
    manifest = stages.scan_target(workspace, memory, make_config().agent)

    objective = stages.choose_objective(models, manifest, None, None)

    assert (objective.source, objective.file_path) == ("brain", "calc.py")


def test_an_objective_naming_a_file_outside_the_workspace_is_unsafe(workspace):
    stages.confine(Objective("fine", file_path="calc.py"), workspace)

    with pytest.raises(CycleError) as info:
        stages.confine(Objective("escape", file_path="../outside.py"), workspace)

    assert reason_of(info) is Reason.UNSAFE_PATH


# -- review and strategy --------------------------------------------------------------------------
def test_review_rejects_a_plan_that_touches_more_files_than_allowed(models, workspace):
    plan = PatchPlan(
        "two files",
        (
            Patch("a.py", Operation.CREATE_FILE, content="A = 1\n"),
            Patch("b.py", Operation.CREATE_FILE, content="B = 1\n"),
        ),
    )
    agent = make_config(agent={"max_patch_files": 1}).agent

    with pytest.raises(CycleError) as info:
        stages.review(models, Objective("two"), plan, workspace, agent)

    assert reason_of(info) is Reason.REVIEW_REJECTED
    assert "agent.max_patch_files" in info.value.detail


def test_the_strategy_is_one_of_the_configured_ones(models, workspace, memory):
    config = make_config()
    manifest = stages.scan_target(workspace, memory, config.agent)
    plan = replace_in_calc("return a + b", "return b + a")

    strategy = stages.pick_strategy(models, Objective("swap"), plan, manifest, config.validation)

    assert list(strategy.steps) == config.validation.strategies[strategy.name]


def test_a_strategy_without_steps_discards_the_plan():
    stages.require_steps(StrategyChoice("SYNTAX_ONLY", ("syntax",)))

    with pytest.raises(CycleError) as info:
        stages.require_steps(StrategyChoice("DISCARD", ()))

    assert reason_of(info) is Reason.DISCARDED


# -- apply and validate ---------------------------------------------------------------------------
def test_apply_returns_the_changed_paths_and_the_digests_of_what_it_wrote(workspace):
    change = stages.apply(replace_in_calc("return a + b", "return b + a"), workspace)

    written = (workspace.root / "calc.py").read_bytes()
    assert change.paths == ("calc.py",)
    assert change.digests == {"calc.py": hashlib.sha256(written).hexdigest()}
    assert b"return b + a" in written


def test_a_plan_that_leaves_every_file_as_it_was_is_no_change(workspace):
    with pytest.raises(CycleError) as info:
        stages.apply(replace_in_calc("return a + b", "return a + b"), workspace)

    assert reason_of(info) is Reason.NO_CHANGE


def test_validation_runs_the_syntax_step_on_the_changed_files(workspace, repo):
    change = stages.apply(replace_in_calc("return a + b", "return (a + "), workspace)
    oracle = Oracle(make_config().validation, Sandbox("none", reason="test"), repo)

    stages.validate(StrategyChoice("NONE", ()), workspace, change, oracle)  # no steps, no check
    with pytest.raises(CycleError) as info:
        stages.validate(StrategyChoice("SYNTAX_ONLY", ("syntax",)), workspace, change, oracle)

    assert reason_of(info) is Reason.SYNTAX_ERROR


# -- commit ---------------------------------------------------------------------------------------
def commit(repo: GitRepo, workspace: Workspace, change: stages.Change, critical=None) -> str:
    git_state = stages.require_idle(repo)
    return stages.commit(
        repo,
        workspace,
        change,
        Objective("Swap the operands"),
        "corr-1",
        git_state=git_state,
        journal=CommitJournal(repo.agent_dir / "journal.json"),
        critical=critical or (lambda: _Section([])),
    )


class _Section:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def __enter__(self) -> None:
        self.log.append("enter")

    def __exit__(self, *exc: object) -> None:
        self.log.append("exit")


def test_commit_fast_forwards_the_target_inside_the_critical_section(target, repo, workspace):
    change = stages.apply(replace_in_calc("return a + b", "return b + a"), workspace)
    sections: list[str] = []

    sha = commit(repo, workspace, change, critical=lambda: _Section(sections))

    assert repo.head() == sha
    assert (target / "calc.py").read_text() == "def add(a, b):\n    return b + a\n"
    assert sections == ["enter", "exit"]


def test_a_file_changed_after_validation_is_never_committed(target, repo, workspace):
    change = stages.apply(replace_in_calc("return a + b", "return b + a"), workspace)
    (workspace.root / "calc.py").write_text("import os\nos.system('evil')\n")
    before = repo_snapshot(target)

    with pytest.raises(CycleError) as info:
        commit(repo, workspace, change)

    assert (reason_of(info), info.value.error_type) == (
        Reason.UNSAFE_PATH,
        "validated_file_changed",
    )
    assert repo_snapshot(target) == before


# -- the runner -----------------------------------------------------------------------------------
def test_the_runner_runs_every_stage_in_order_and_times_each(target):
    runner = make_agent(make_config(), target)
    seen: list[tuple[str, bool]] = []
    runner.on_stage = lambda _result, stage: seen.append((stage.value, runner.guard.running))
    try:
        result = runner.run_cycle()
    finally:
        runner.close()

    assert result.reason is Reason.COMMITTED
    assert [stage for stage, _ in seen] == STAGE_ORDER
    assert list(result.durations) == STAGE_ORDER
    # the shutdown handler may abort every stage but the record; and nothing after the cycle
    assert [running for _, running in seen] == [True] * (len(STAGE_ORDER) - 1) + [False]
    assert not runner.guard.running


def test_the_fast_forward_into_the_target_is_a_critical_section(target, monkeypatch):
    runner = make_agent(make_config(), target)
    states: list[bool] = []
    real = GitRepo.fast_forward

    def fast_forward(repo: GitRepo, sha: str) -> None:
        states.append(runner.guard.critical)
        real(repo, sha)

    monkeypatch.setattr(GitRepo, "fast_forward", fast_forward)
    try:
        result = runner.run_cycle()
    finally:
        runner.close()

    assert result.reason is Reason.COMMITTED
    assert states == [True]
    assert not runner.guard.critical


def test_a_stop_requested_before_a_stage_ends_the_cycle_before_it(target):
    before = repo_snapshot(target)
    runner = make_agent(make_config(), target)
    runner.request_stop()
    try:
        result = runner.run_cycle()
        [row] = runner.memory.recent(1)
    finally:
        runner.close()

    assert result.reason is Reason.SHUTDOWN
    assert "before the scan stage" in result.detail
    assert list(result.durations) == ["record"]
    assert (row["reason"], row["correlation_id"]) == ("shutdown", result.correlation_id)
    assert repo_snapshot(target) == before


def test_a_stage_that_fails_leaves_no_workspace_and_the_target_untouched(target, monkeypatch):
    before = repo_snapshot(target)
    runner = make_agent(make_config(), target)

    def failing_tests(*_args: object) -> None:
        raise CycleError(Reason.TESTS_FAILED, "scripted failure")

    monkeypatch.setattr(stages, "validate", failing_tests)
    try:
        result = runner.run_cycle()
    finally:
        runner.close()

    assert (result.reason, result.files) == (Reason.TESTS_FAILED, ("calc.py",))
    assert list(result.durations) == [*STAGE_ORDER[: STAGE_ORDER.index("validate") + 1], "record"]
    assert not any(runner.workspaces_dir.iterdir())
    assert repo_snapshot(target) == before


def test_an_abort_mid_cycle_is_recorded_then_raised(target):
    before = repo_snapshot(target)
    runner = make_agent(make_config(), target)

    def abort_at_plan(_result: CycleResult, stage: Stage) -> None:
        if stage is Stage.PLAN:
            raise CycleAborted("grace period over")

    runner.on_stage = abort_at_plan
    try:
        with pytest.raises(CycleAborted):
            runner.run_cycle()
        [row] = runner.memory.recent(1)
    finally:
        runner.close()

    assert (row["outcome"], row["reason"]) == ("aborted", "shutdown")
    assert not runner.guard.running
    assert not any(runner.workspaces_dir.iterdir())
    assert repo_snapshot(target) == before


def test_a_cycle_that_outlives_its_deadline_is_a_timeout(target):
    runner = make_agent(make_config(resilience={"cycle_timeout": 1}), target)

    def slow_scan(_result: CycleResult, stage: Stage) -> None:
        if stage is Stage.SCAN:
            time.sleep(1.2)

    runner.on_stage = slow_scan
    try:
        result = runner.run_cycle()
    finally:
        runner.close()

    assert result.reason is Reason.TIMEOUT
    assert "during the scan stage" in result.detail


def test_the_brain_moves_on_from_its_own_objective_but_not_from_the_operators(target):
    runner = make_agent(make_config(), target)
    try:
        runner.run_cycle(objective="Swap the operands of add")
        after_operator = runner.last_objective
        result = runner.run_cycle()
    finally:
        runner.close()

    assert after_operator is None
    assert runner.last_objective == result.objective
    assert result.objective is not None and result.objective.source == "brain"


def test_cycles_reuse_one_worktree_and_close_removes_it(target):
    runner = make_agent(make_config(), target)
    seen: list[list[str]] = []

    def list_worktrees(_result: CycleResult, stage: Stage) -> None:
        if stage is Stage.APPLY:
            seen.append(worktrees(target))

    runner.on_stage = list_worktrees
    try:
        for _ in range(3):
            runner.run_cycle()
        between = worktrees(target)
    finally:
        runner.close()

    assert len(seen) >= 2, "the cycles did not reach apply"
    assert all(listed == seen[0] and len(listed) == 2 for listed in seen)
    assert between == seen[0]  # kept between cycles, reset when the next one opens it
    assert worktrees(target) == [str(target)]
    assert not any(runner.workspaces_dir.iterdir())


def worktrees(repo: Path) -> list[str]:
    listed = git(repo, "worktree", "list", "--porcelain").splitlines()
    return [line.split(" ", 1)[1] for line in listed if line.startswith("worktree ")]
