"""Run one improvement cycle: scan → objective → plan → review → strategy → apply → validate →
commit | discard → record. Each stage is a small function; this module only sequences them.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hephaestus import telemetry
from hephaestus.agent import validation
from hephaestus.agent.architect import plan_patch
from hephaestus.agent.brain import generate_next_objective
from hephaestus.agent.commits import commit_message
from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.maestro import choose_strategy
from hephaestus.agent.manifest import Manifest, scan
from hephaestus.agent.memory import Memory
from hephaestus.agent.models import (
    CycleError,
    CycleResult,
    Objective,
    PatchPlan,
    Reason,
    Stage,
    StrategyChoice,
)
from hephaestus.agent.patches import apply_plan
from hephaestus.agent.reviewer import review_plan
from hephaestus.agent.workspace import Workspace
from hephaestus.config import Config
from hephaestus.llm.client import RoleModels, Usage, usage_scope

_LOG = logging.getLogger("hephaestus.cycle")

StageListener = Callable[[CycleResult, Stage], None]
AGENT_OF_STAGE = {Stage.OBJECTIVE: "brain", Stage.PLAN: "architect", Stage.REVIEW: "code_reviewer",
                  Stage.STRATEGY: "maestro"}


@dataclass
class _CycleState:
    """What the stages of one cycle hand to each other."""

    result: CycleResult
    workspace: Workspace | None = None
    manifest: Manifest | None = None
    plan: PatchPlan | None = None
    strategy: StrategyChoice | None = None
    changed: tuple[str, ...] = ()


class CycleRunner:
    """Runs cycles against one repository with one set of models and one memory."""

    def __init__(self, config: Config, repo: GitRepo, models: RoleModels, memory: Memory,
                 logger: logging.Logger | None = None,
                 on_stage: StageListener | None = None,
                 telemetry_handle: telemetry.Telemetry | None = None) -> None:
        self.config = config
        self.repo = repo
        self.models = models
        self.memory = memory
        self.log = logger or _LOG
        self.on_stage = on_stage
        self.telemetry = telemetry_handle
        self.last_objective: Objective | None = None

    @property
    def workspaces_dir(self) -> Path:
        """Where this runner's workspaces live."""
        configured = self.config.agent.workspace_dir
        return Path(configured) if configured else self.repo.agent_dir / "workspaces"

    def run_cycle(self, objective: str | None = None,
                  correlation_id: str | None = None) -> CycleResult:
        """Run one cycle and return its result; the target repo changes only on success."""
        result = CycleResult(correlation_id=correlation_id or str(uuid.uuid4()),
                             cycle_number=self.memory.next_cycle_number(),
                             provider=self.models.provider.name, started_at=time.time())
        state = _CycleState(result)
        with telemetry.cycle_span(result.correlation_id, result.cycle_number) as root, \
                usage_scope() as usage:
            result.trace_id = root.trace_id
            self.memory.start_cycle(result)
            try:
                self._run_stages(state, objective)
                result.end(Reason.COMMITTED, f"committed {result.commit_sha}")
            except CycleError as exc:
                result.end(exc.reason, exc.detail)
            except KeyboardInterrupt:
                result.end(Reason.SHUTDOWN, "interrupted by the operator")
                self._finish(state, usage, root)
                raise
            except Exception as exc:
                self.log.exception("internal error in cycle")
                result.end(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            self._finish(state, usage, root)
        return result

    def _finish(self, state: _CycleState, usage: Usage, root: telemetry.CycleSpan) -> None:
        result = state.result
        if state.workspace is not None:
            state.workspace.discard()
            state.workspace = None
        result.llm_calls, result.input_tokens = usage.calls, usage.input_tokens
        result.output_tokens, result.model = usage.output_tokens, ",".join(usage.models)
        with self._stage(result, Stage.RECORD):
            result.finished_at = time.time()
            self.memory.finish_cycle(result)
        root.finish(result.outcome.value, result.reason.value, {
            "llm_calls": result.llm_calls, "usage.input_tokens": result.input_tokens,
            "usage.output_tokens": result.output_tokens})
        telemetry.record_cycle(result.outcome.value, result.reason.value, result.duration, root)
        self.log.info("cycle finished", extra={
            "outcome": result.outcome.value, "reason": result.reason.value,
            "detail": result.detail, "duration_s": round(result.duration, 3),
            "commit": result.commit_sha, "objective": getattr(result.objective, "text", None)})

    @contextlib.contextmanager
    def _stage(self, result: CycleResult, stage: Stage) -> Iterator[None]:
        with telemetry.stage_span(stage.value, AGENT_OF_STAGE.get(stage)):
            if self.on_stage is not None:
                self.on_stage(result, stage)
            started = time.perf_counter()
            try:
                yield
            finally:
                elapsed = time.perf_counter() - started
                result.durations[stage.value] = result.durations.get(stage.value, 0.0) + elapsed

    def _run_stages(self, state: _CycleState, objective_text: str | None) -> None:
        result = state.result
        with self._stage(result, Stage.SCAN):
            self._scan(state)
        with self._stage(result, Stage.OBJECTIVE):
            result.objective = self._objective(state, objective_text)
        with self._stage(result, Stage.PLAN):
            state.plan = plan_patch(self.models, result.objective, state.manifest,
                                    state.workspace.root)
        with self._stage(result, Stage.REVIEW):
            self._review(state)
        with self._stage(result, Stage.STRATEGY):
            self._strategy(state)
        with self._stage(result, Stage.APPLY):
            self._apply(state)
        with self._stage(result, Stage.VALIDATE):
            self._validate(state)
        with self._stage(result, Stage.COMMIT):
            self._commit(state)

    def _scan(self, state: _CycleState) -> None:
        agent = self.config.agent
        state.workspace = Workspace.create(self.repo, self.workspaces_dir,
                                           state.result.correlation_id)
        recent = self.memory.recent(agent.history_window)
        history = tuple({"objective": r["objective"], "outcome": r["outcome"],
                         "reason": r["reason"]} for r in recent if r["objective"])
        blocked = tuple(text for text, count in
                        self.memory.failure_counts(agent.history_window).items()
                        if count >= agent.max_objective_failures)
        state.manifest = scan(state.workspace.root, max_files=agent.max_manifest_files,
                              max_source_bytes=agent.max_prompt_source_bytes,
                              recent_cycles=history, blocked_objectives=blocked)

    def _objective(self, state: _CycleState, text: str | None) -> Objective:
        if text is not None:
            return Objective(text=" ".join(text.split()), source="operator")
        objective = generate_next_objective(self.models, state.manifest, self.last_objective,
                                            logger=self.log)
        if objective is None:
            raise CycleError(Reason.NO_OBJECTIVE, "the brain found nothing worth changing")
        self.last_objective = objective
        return objective

    def _review(self, state: _CycleState) -> None:
        agent = self.config.agent
        review = review_plan(self.models, state.result.objective, state.plan,
                             state.workspace.root, max_files=agent.max_patch_files,
                             mode=agent.review_mode)
        if not review.approved:
            raise CycleError(Reason.REVIEW_REJECTED, f"review rejected the plan: {review.feedback}")

    def _strategy(self, state: _CycleState) -> None:
        validation_config = self.config.validation
        state.strategy = choose_strategy(self.models, state.result.objective, state.plan,
                                         state.manifest, validation_config.strategies,
                                         validation_config.default_strategy)
        state.result.strategy = state.strategy.name
        if not state.strategy.steps:
            raise CycleError(Reason.DISCARDED, f"strategy {state.strategy.name} discards the plan")

    def _apply(self, state: _CycleState) -> None:
        touched = apply_plan(state.plan, state.workspace.root)
        state.changed = state.workspace.changed_paths(touched)
        state.result.files = state.changed
        if not state.changed:
            raise CycleError(Reason.NO_CHANGE, "the plan leaves every file as it was")

    def _validate(self, state: _CycleState) -> None:
        root = state.workspace.root
        for step in state.strategy.steps:
            if step == "syntax":
                validation.check_syntax(root, state.changed)
            elif step == "pytest":
                self._run_tests(state)

    def _run_tests(self, state: _CycleState) -> None:
        config = self.config.validation
        with telemetry.tool_span("pytest") as tool:
            try:
                run = validation.run_pytest(state.workspace.root,
                                            [*tool.pytest_args(), *config.pytest_args],
                                            timeout=config.pytest_timeout, env=tool.env())
            except CycleError as exc:
                tool.result(exc.reason.value)
                raise
            tool.result(run.result, run.exit_code)
        if run.result == "failed":
            tail = run.output_tail.strip().splitlines()[-1:] or [""]
            raise CycleError(Reason.TESTS_FAILED,
                             f"pytest exited with {run.exit_code}: {tail[0][:300]}")

    def _commit(self, state: _CycleState) -> None:
        workspace, result = state.workspace, state.result
        head = self.repo.head()
        if head != workspace.base:
            raise CycleError(Reason.PATCH_CONFLICT,
                             f"the target's HEAD moved from {workspace.base[:12]} during the cycle")
        dirty = self.repo.dirty_paths(state.changed)
        if dirty:
            raise CycleError(Reason.PATCH_CONFLICT,
                             f"the target has local changes in {', '.join(dirty)}; not overwriting")
        sha = workspace.commit(state.changed, commit_message(result.objective))
        self.repo.fast_forward(sha)
        result.commit_sha = sha

    def llm_status(self) -> dict[str, object]:
        """The provider and models this runner uses, for ``/api/health``."""
        return {"status": "ok", "provider": self.models.provider.name,
                "models": list(self.models.all_models)}

    def close(self) -> None:
        """Release connections and the memory database; flush telemetry within its deadline."""
        self.models.close()
        self.memory.close()
        if self.telemetry is not None:
            self.telemetry.shutdown()
