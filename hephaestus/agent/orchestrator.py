"""Run one improvement cycle, stage by stage.

scan → objective → plan → review → strategy → apply → validate → commit | discard → record.
Each stage is a small function elsewhere; this module only sequences them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hephaestus import telemetry
from hephaestus.agent import validation
from hephaestus.agent.architect import plan_patch
from hephaestus.agent.brain import generate_next_objective
from hephaestus.agent.committer import commit_change
from hephaestus.agent.gitrepo import GitRepo, RepositoryBusy
from hephaestus.agent.guard import GitFingerprint, file_digests, verify_unchanged
from hephaestus.agent.maestro import choose_strategy
from hephaestus.agent.manifest import Manifest, scan
from hephaestus.agent.memory import Memory, failure_counts
from hephaestus.agent.models import (
    AGENT_OF_STAGE,
    CycleAborted,
    CycleError,
    CycleResult,
    Objective,
    PatchPlan,
    Reason,
    Stage,
    StrategyChoice,
    check_correlation_id,
)
from hephaestus.agent.oracle import TestOracle
from hephaestus.agent.patches import apply_plan, safe_path
from hephaestus.agent.recovery import JOURNAL_NAME, AgentLock, CommitJournal
from hephaestus.agent.reviewer import review_plan
from hephaestus.agent.sandbox import Sandbox
from hephaestus.agent.workspace import Workspace
from hephaestus.config import Config
from hephaestus.llm.client import RoleModels, Usage, usage_scope
from hephaestus.resilience.timeouts import Deadline, deadline_scope

_LOG = logging.getLogger("hephaestus.cycle")

StageListener = Callable[[CycleResult, Stage], None]


@dataclass
class _CycleState:
    """What the stages of one cycle hand to each other."""

    result: CycleResult
    deadline: Deadline
    workspace: Workspace | None = None
    manifest: Manifest | None = None
    plan: PatchPlan | None = None
    strategy: StrategyChoice | None = None
    changed: tuple[str, ...] = ()
    written: dict[str, str] | None = None  # digests of the files the patch wrote
    git_state: GitFingerprint | None = None  # the target's .git when the cycle started


class CycleRunner:
    """Runs cycles against one repository with one set of models and one memory."""

    def __init__(
        self,
        config: Config,
        repo: GitRepo,
        models: RoleModels,
        memory: Memory,
        logger: logging.Logger | None = None,
        on_stage: StageListener | None = None,
        telemetry_handle: telemetry.Telemetry | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.config = config
        self.repo = repo
        self.models = models
        self.memory = memory
        self.sandbox = sandbox or Sandbox("none", reason="no sandbox was configured")
        self.oracle = TestOracle(
            config.validation, self.sandbox, repo, secret=config.llm.api_key_env
        )
        self.log = logger or _LOG
        self.on_stage = on_stage
        self.telemetry = telemetry_handle
        self.lock: AgentLock | None = None
        self.last_objective: Objective | None = None
        self.journal = CommitJournal(repo.agent_dir / JOURNAL_NAME)
        self.stop_requested = threading.Event()
        self.in_cycle = False  # the shutdown handler may abort the cycle only while True
        self.in_critical = False  # ...and must wait while True (fast-forward into the target)

    @property
    def workspaces_dir(self) -> Path:
        """Where this runner's workspaces live."""
        configured = self.config.agent.workspace_dir
        return Path(configured) if configured else self.repo.agent_dir / "workspaces"

    def request_stop(self) -> None:
        """Finish the current stage, then end the cycle as ``aborted`` (graceful shutdown)."""
        self.stop_requested.set()

    def run_cycle(
        self, objective: str | None = None, correlation_id: str | None = None
    ) -> CycleResult:
        """Run one cycle and return its result; the target repo changes only on success.

        Raises ``ValueError`` for a ``correlation_id`` that breaks the correlation-id rule.
        """
        result = CycleResult(
            correlation_id=check_correlation_id(correlation_id or str(uuid.uuid4())),
            cycle_number=self.memory.next_cycle_number(),
            provider=self.models.provider.name,
            started_at=time.time(),
        )
        state = _CycleState(
            result, Deadline.after(self.config.resilience.cycle_timeout, "cycle deadline")
        )
        with (
            telemetry.cycle_span(result.correlation_id, result.cycle_number) as root,
            usage_scope() as usage,
        ):
            result.trace_id = root.trace_id
            self.memory.start_cycle(result)
            try:
                self._interruptible(state, objective)
                result.end(Reason.COMMITTED, f"committed {result.commit_sha}")
            except CycleError as exc:
                result.end(exc.reason, exc.detail)
            except (KeyboardInterrupt, CycleAborted) as exc:
                result.end(Reason.SHUTDOWN, f"aborted by shutdown ({type(exc).__name__})")
                self._finish(state, usage, root)
                raise
            except Exception as exc:
                self.log.exception("internal error in cycle")
                result.end(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            self._finish(state, usage, root)
        return result

    def _interruptible(self, state: _CycleState, objective: str | None) -> None:
        self.in_cycle = True
        try:
            self._run_stages(state, objective)
        finally:
            self.in_cycle = False

    @contextlib.contextmanager
    def _critical(self) -> Iterator[None]:
        self.in_critical = True
        try:
            yield
        finally:
            self.in_critical = False

    def _finish(self, state: _CycleState, usage: Usage, root: telemetry.CycleSpan) -> None:
        result = state.result
        if state.workspace is not None:
            state.workspace.discard()
            state.workspace = None
        result.llm_calls, result.input_tokens = usage.calls, usage.input_tokens
        result.output_tokens, result.model = usage.output_tokens, ",".join(usage.models)
        with self._stage(state, Stage.RECORD):
            result.finished_at = time.time()
            self.memory.finish_cycle(result)
        root.finish(
            result.outcome.value,
            result.reason.value,
            {
                "llm_calls": result.llm_calls,
                "usage.input_tokens": result.input_tokens,
                "usage.output_tokens": result.output_tokens,
            },
        )
        telemetry.record_cycle(
            result.outcome.value, result.reason.value, result.started_at, result.finished_at, root
        )
        self.log.info(
            "cycle finished",
            extra={
                "outcome": result.outcome.value,
                "reason": result.reason.value,
                "detail": result.detail,
                "duration_s": round(result.duration, 3),
                "commit": result.commit_sha,
                "objective": getattr(result.objective, "text", None),
            },
        )

    @contextlib.contextmanager
    def _stage(self, state: _CycleState, stage: Stage) -> Iterator[None]:
        """Span, stop/deadline checks, the stage's own deadline, and its duration."""
        result = state.result
        with telemetry.stage_span(stage.value, AGENT_OF_STAGE.get(stage)):
            if stage is not Stage.RECORD:
                self._check_may_start(state, stage)
            if self.on_stage is not None:
                self.on_stage(result, stage)
            deadline = state.deadline.within(
                self.config.resilience.stage_timeout, f"{stage.value} stage timeout"
            )
            started = time.perf_counter()
            try:
                with deadline_scope(deadline):
                    yield
            finally:
                elapsed = time.perf_counter() - started
                result.durations[stage.value] = result.durations.get(stage.value, 0.0) + elapsed
            if stage not in (Stage.COMMIT, Stage.RECORD) and deadline.expired:
                raise CycleError(
                    Reason.TIMEOUT,
                    f"the {deadline.what} passed during the {stage.value} stage ({elapsed:.1f}s)",
                )

    def _check_may_start(self, state: _CycleState, stage: Stage) -> None:
        if self.stop_requested.is_set():
            raise CycleError(
                Reason.SHUTDOWN,
                f"shutdown requested; the cycle stopped before the {stage.value} stage",
            )
        if state.deadline.expired:
            raise CycleError(
                Reason.TIMEOUT, f"the cycle deadline passed before the {stage.value} stage"
            )

    def _run_stages(self, state: _CycleState, objective_text: str | None) -> None:
        result = state.result
        with self._stage(state, Stage.SCAN):
            self._scan(state)
        with self._stage(state, Stage.OBJECTIVE):
            result.objective = self._objective(state, objective_text)
        with self._stage(state, Stage.PLAN):
            state.plan = plan_patch(
                self.models,
                result.objective,
                state.manifest,
                state.workspace.root,
                self.config.agent.max_plan_file_bytes,
            )
        with self._stage(state, Stage.REVIEW):
            self._review(state)
        with self._stage(state, Stage.STRATEGY):
            self._strategy(state)
        with self._stage(state, Stage.APPLY):
            self._apply(state)
        with self._stage(state, Stage.VALIDATE):
            self._validate(state)
        with self._stage(state, Stage.COMMIT):
            self._commit(state)

    def _scan(self, state: _CycleState) -> None:
        agent = self.config.agent
        try:
            self.repo.require_idle()
        except RepositoryBusy as exc:
            raise CycleError(Reason.PATCH_CONFLICT, str(exc), error_type="busy_repo") from None
        state.git_state = GitFingerprint.take(self.repo)
        state.workspace = Workspace.create(
            self.repo, self.workspaces_dir, state.result.correlation_id
        )
        recent = self.memory.recent(agent.history_window)
        history = tuple(
            {"objective": r["objective"], "outcome": r["outcome"], "reason": r["reason"]}
            for r in recent
            if r["objective"]
        )
        blocked = tuple(
            text
            for text, count in failure_counts(recent).items()
            if count >= agent.max_objective_failures
        )
        state.manifest = scan(
            state.workspace.root,
            max_files=agent.max_manifest_files,
            max_source_bytes=agent.max_prompt_source_bytes,
            recent_cycles=history,
            blocked_objectives=blocked,
        )

    def _objective(self, state: _CycleState, text: str | None) -> Objective:
        if text is not None:
            return Objective(text=" ".join(text.split()), source="operator")
        objective = generate_next_objective(
            self.models, state.manifest, self.last_objective, logger=self.log
        )
        if objective is None:
            raise CycleError(Reason.NO_OBJECTIVE, "the brain found nothing worth changing")
        self.last_objective = objective
        if objective.file_path is not None:  # confined before the architect reads it
            safe_path(state.workspace.root, objective.file_path)
        return objective

    def _review(self, state: _CycleState) -> None:
        agent = self.config.agent
        review = review_plan(
            self.models,
            state.result.objective,
            state.plan,
            state.workspace.root,
            max_files=agent.max_patch_files,
            mode=agent.review_mode,
            allow_test_edits=agent.allow_test_edits,
        )
        if not review.approved:
            raise CycleError(Reason.REVIEW_REJECTED, f"review rejected the plan: {review.feedback}")

    def _strategy(self, state: _CycleState) -> None:
        validation_config = self.config.validation
        state.strategy = choose_strategy(
            self.models,
            state.result.objective,
            state.plan,
            state.manifest,
            validation_config.strategies,
            validation_config.default_strategy,
            validation_config.require_tests,
        )
        state.result.strategy = state.strategy.name
        if not state.strategy.steps:
            raise CycleError(Reason.DISCARDED, f"strategy {state.strategy.name} discards the plan")

    def _apply(self, state: _CycleState) -> None:
        touched = apply_plan(state.plan, state.workspace.root)
        state.changed = state.workspace.changed_paths(touched)
        state.result.files = state.changed
        if not state.changed:
            raise CycleError(Reason.NO_CHANGE, "the plan leaves every file as it was")
        state.written = file_digests(state.workspace.root, state.changed)

    def _validate(self, state: _CycleState) -> None:
        root = state.workspace.root
        for step in state.strategy.steps:
            if step == "syntax":
                validation.check_syntax(root, state.changed)
            elif step == "pytest":
                self.oracle.check(state.workspace)

    def _commit(self, state: _CycleState) -> None:
        result = state.result
        state.git_state.verify(self.repo)  # nothing ran by validation touched .git...
        verify_unchanged(state.workspace.root, state.written)  # ...or what it validated
        result.commit_sha = commit_change(
            self.repo,
            state.workspace,
            state.changed,
            result.objective,
            result.correlation_id,
            self.journal,
            self._critical,
        )
        self.oracle.committed(result.commit_sha)

    def llm_status(self) -> dict[str, object]:
        """Provider, models and breaker states for ``/api/health``.

        ``error`` when a role has every breaker open (its stage would fail fast),
        ``degraded`` when any breaker is open.
        """
        breakers = {b.name: b.state.value for b in self.models.breakers.values()}
        status: dict[str, object] = {
            "status": "ok",
            "provider": self.models.provider.name,
            "models": list(self.models.all_models),
            "breakers": breakers,
        }
        blocked = self.models.open_roles()
        if blocked:
            status |= {
                "status": "error",
                "reason": f"every circuit breaker is open for {', '.join(blocked)}",
            }
        elif "open" in breakers.values():
            status["status"] = "degraded"
        return status

    def close(self) -> None:
        """Release connections and the memory database; flush telemetry within its deadline."""
        self.models.close()
        self.memory.close()
        if self.lock is not None:
            self.lock.release()
        if self.telemetry is not None:
            self.telemetry.shutdown()
