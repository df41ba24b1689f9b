"""Run one improvement cycle, stage by stage.

scan → objective → plan → review → strategy → apply → validate → commit | discard → record.
Each stage is a function in :mod:`hephaestus.agent.stages` that takes what it needs and
returns what the next one takes; this module only sequences them, each inside its span,
its deadline and its timing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hephaestus import telemetry
from hephaestus.agent import stages
from hephaestus.agent.architect import plan_patch
from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.memory import Memory
from hephaestus.agent.models import (
    AGENT_OF_STAGE,
    CycleAborted,
    CycleError,
    CycleResult,
    Objective,
    Reason,
    Stage,
    check_correlation_id,
)
from hephaestus.agent.oracle import TestOracle
from hephaestus.agent.recovery import JOURNAL_NAME, AgentLock, CommitJournal
from hephaestus.agent.sandbox import Sandbox
from hephaestus.agent.workspace import AgentWorkspace
from hephaestus.config import Config
from hephaestus.llm.client import RoleModels, Usage, usage_scope
from hephaestus.resilience.backoff import FailureStreak
from hephaestus.resilience.timeouts import Deadline, deadline_scope

_LOG = logging.getLogger("hephaestus.cycle")

StageListener = Callable[[CycleResult, Stage], None]


@dataclass(frozen=True)
class _Cycle:
    """What every stage wrapper of one cycle needs: its result, deadline and cleanup."""

    result: CycleResult
    deadline: Deadline
    cleanup: contextlib.ExitStack[bool | None] = field(default_factory=contextlib.ExitStack)


class CycleGuard:
    """Where the running cycle is, so the shutdown handler knows whether it may cut it short.

    ``running`` is true while the stages run (an abort unwinds them cleanly);
    ``critical`` while the target is being fast-forwarded (an abort must wait for it).
    """

    def __init__(self) -> None:
        self._running = False
        self._critical = False

    @property
    def running(self) -> bool:
        """A cycle's stages are running: the shutdown handler may abort them."""
        return self._running

    @property
    def critical(self) -> bool:
        """The target is being fast-forwarded: an abort waits until it is done."""
        return self._critical

    @contextlib.contextmanager
    def stages(self) -> Iterator[None]:
        """Mark the stages of a cycle as running."""
        self._running = True
        try:
            yield
        finally:
            self._running = False

    @contextlib.contextmanager
    def critical_section(self) -> Iterator[None]:
        """Mark a section no abort may interrupt."""
        self._critical = True
        try:
            yield
        finally:
            self._critical = False


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
        lock: AgentLock | None = None,
        streak: FailureStreak | None = None,
    ) -> None:
        self.config = config
        self.repo = repo
        self.models = models
        self.memory = memory
        self.sandbox = sandbox or Sandbox("none", reason="no sandbox was configured")
        self.telemetry = telemetry_handle
        self.instruments = (
            telemetry_handle.instruments if telemetry_handle else telemetry.Instruments.default()
        )
        self.oracle = TestOracle(
            config.validation,
            self.sandbox,
            repo,
            secret=config.llm.api_key_env,
            instruments=self.instruments,
        )
        self.log = logger or _LOG
        self.on_stage = on_stage
        self.streak = streak or FailureStreak()
        self.lock = lock
        self.last_objective: Objective | None = None
        self.journal = CommitJournal(repo.agent_dir / JOURNAL_NAME)
        self.workspace = AgentWorkspace(repo, self.workspaces_dir)
        self.stop_requested = threading.Event()
        self.guard = CycleGuard()

    @property
    def metrics(self) -> telemetry.Metrics:
        """The metrics this runner records into."""
        return self.instruments.metrics

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
        deadline = Deadline.after(self.config.resilience.cycle_timeout, "cycle deadline")
        with (
            self.instruments.cycle_span(result.correlation_id, result.cycle_number) as root,
            usage_scope() as usage,
        ):
            result.trace_id = root.trace_id
            self.memory.start_cycle(result)
            try:
                with contextlib.ExitStack() as cleanup, self.guard.stages():
                    self._run_stages(_Cycle(result, deadline, cleanup), objective)
                result.end(Reason.COMMITTED, f"committed {result.commit_sha}")
            except CycleError as exc:
                result.end(exc.reason, exc.detail)
            except (KeyboardInterrupt, CycleAborted) as exc:
                result.end(Reason.SHUTDOWN, f"aborted by shutdown ({type(exc).__name__})")
                self._finish(result, deadline, usage, root)
                raise
            except Exception as exc:
                self.log.exception("internal error in cycle")
                result.end(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            self._finish(result, deadline, usage, root)
        return result

    def _finish(
        self, result: CycleResult, deadline: Deadline, usage: Usage, root: telemetry.CycleSpan
    ) -> None:
        result.llm_calls, result.input_tokens = usage.calls, usage.input_tokens
        result.output_tokens, result.model = usage.output_tokens, ",".join(usage.models)
        with self._stage(_Cycle(result, deadline), Stage.RECORD):
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
        outcome = result.outcome.value
        recovered = self.streak.record(outcome, result.started_at, result.finished_at)
        self.instruments.record_cycle(
            outcome,
            result.reason.value,
            result.duration,
            root,
            failures=self.streak.failures,
            recovered_after=recovered,
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
    def _stage(self, cycle: _Cycle, stage: Stage) -> Iterator[None]:
        """Span, stop/deadline checks, the stage's own deadline, and its duration."""
        result = cycle.result
        with self.instruments.stage_span(stage.value, AGENT_OF_STAGE.get(stage)):
            if stage is not Stage.RECORD:
                self._check_may_start(cycle.deadline, stage)
            if self.on_stage is not None:
                self.on_stage(result, stage)
            deadline = cycle.deadline.within(
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

    def _check_may_start(self, deadline: Deadline, stage: Stage) -> None:
        if self.stop_requested.is_set():
            raise CycleError(
                Reason.SHUTDOWN,
                f"shutdown requested; the cycle stopped before the {stage.value} stage",
            )
        if deadline.expired:
            raise CycleError(
                Reason.TIMEOUT, f"the cycle deadline passed before the {stage.value} stage"
            )

    def _run_stages(self, cycle: _Cycle, objective_text: str | None) -> None:
        """The stages in order; what each returns is what the next one takes."""
        config, result = self.config, cycle.result
        with self._stage(cycle, Stage.SCAN):
            git_state = stages.require_idle(self.repo)
            workspace = self.workspace.open()  # reset to HEAD; close() removes it
            manifest = stages.scan_target(workspace, self.memory, config.agent)
        with self._stage(cycle, Stage.OBJECTIVE):
            objective = stages.choose_objective(
                self.models, manifest, objective_text, self.last_objective, self.log
            )
            if objective_text is None:
                self.last_objective = objective
            stages.confine(objective, workspace)
            result.objective = objective
        with self._stage(cycle, Stage.PLAN):
            plan = plan_patch(
                self.models, objective, manifest, workspace.root, config.agent.max_plan_file_bytes
            )
        with self._stage(cycle, Stage.REVIEW):
            stages.review(self.models, objective, plan, workspace, config.agent)
        with self._stage(cycle, Stage.STRATEGY):
            strategy = stages.pick_strategy(
                self.models, objective, plan, manifest, config.validation
            )
            result.strategy = strategy.name
            stages.require_steps(strategy)
        with self._stage(cycle, Stage.APPLY):
            change = stages.apply(plan, workspace)
            result.files = change.paths
        with self._stage(cycle, Stage.VALIDATE):
            stages.validate(strategy, workspace, change, self.oracle)
        with self._stage(cycle, Stage.COMMIT):
            result.commit_sha = stages.commit(
                self.repo,
                workspace,
                change,
                objective,
                result.correlation_id,
                git_state=git_state,
                journal=self.journal,
                critical=self.guard.critical_section,
            )
            self.oracle.committed(result.commit_sha)

    def close(self) -> None:
        """Remove the worktree, close connections and memory; flush telemetry in time."""
        self.workspace.close()
        self.models.close()
        self.memory.close()
        if self.lock is not None:
            self.lock.release()
        if self.telemetry is not None:
            self.telemetry.shutdown()
