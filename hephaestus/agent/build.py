"""Assemble a ready :class:`CycleRunner` from config: repo, provider, models, memory."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from hephaestus import telemetry
from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.memory import Memory, failure_streak
from hephaestus.agent.models import Reason, Stage
from hephaestus.agent.orchestrator import AGENT_OF_STAGE, CycleRunner, StageListener
from hephaestus.agent.paths import memory_path, span_file_path
from hephaestus.agent.recovery import AgentLock, recover
from hephaestus.agent.sandbox import Sandbox, resolve_sandbox
from hephaestus.config import Config
from hephaestus.llm.base import Provider
from hephaestus.llm.chaos import ChaosProvider
from hephaestus.llm.client import RoleModels
from hephaestus.llm.offline import OFFLINE_MODEL, OfflineProvider
from hephaestus.resilience.retry import RetryPolicy
from hephaestus.telemetry import SpanExporter

STREAK_LOOKBACK = 500  # cycles read at start to resume a failure streak across a restart
_LOG = logging.getLogger("hephaestus.build")


def build_sandbox(config: Config) -> Sandbox:
    """The validation sandbox; says once, as a warning, when the tests will run unsandboxed."""
    sandbox = resolve_sandbox(config.validation.sandbox)
    if not sandbox.isolated:
        _LOG.warning(
            "validation is not sandboxed: %s",
            sandbox.reason,
            extra={"sandbox": sandbox.mode, "package": "bubblewrap"},
        )
    return sandbox


def build_models(
    config: Config,
    env: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    instruments: telemetry.Instruments | None = None,
) -> RoleModels:
    """The role models of the configured provider, with retries, breakers and chaos.

    ``clock`` times the circuit breakers (tests pass one they move by hand); the model
    calls are traced and measured with ``instruments`` (default: the global ones).
    """
    if config.agent.provider == "openai":
        from hephaestus.llm.openai import OpenAICompatibleProvider

        provider: Provider = OpenAICompatibleProvider(config.llm, env=env)
        models: Mapping[str, list[str]] = config.llm.models
        windows = {m: config.llm.context_window(m) for names in models.values() for m in names}
    else:
        provider = OfflineProvider(seed=config.agent.seed)
        models = {role: [OFFLINE_MODEL] for role in config.llm.models}
        # the offline engine has no context window unless one is configured for it by name
        windows = {
            m: t for m, t in config.llm.context_tokens_by_model.items() if m == OFFLINE_MODEL
        }
    if config.chaos.active:
        provider = ChaosProvider(provider, config.chaos)
    resilience = config.resilience
    return RoleModels(
        provider,
        models,
        policy=RetryPolicy.from_config(resilience),
        request_timeout=config.llm.request_timeout,
        breaker_threshold=resilience.breaker_failure_threshold,
        breaker_reset=resilience.breaker_reset_timeout,
        context_windows=windows,
        max_tokens=config.llm.max_tokens,
        clock=clock,
        instruments=instruments,
    )


def configured_models(config: Config) -> tuple[str, ...]:
    """Every model the configured provider may call, once (the model label's values)."""
    if config.agent.provider != "openai":
        return (OFFLINE_MODEL,)
    return tuple(dict.fromkeys(m for names in config.llm.models.values() for m in names))


def _open_repo(project: Path) -> GitRepo:
    """The target, refused when it has no commit or is mid-merge; ``.hephaestus/`` ignored."""
    repo = GitRepo.open(project)
    repo.require_head()
    repo.require_idle()
    repo.ignore_agent_dir()
    return repo


def _declare_series(metrics: telemetry.Metrics, models: RoleModels) -> None:
    telemetry.declare_series(
        metrics,
        outcome_reasons=[(r.outcome.value, r.value) for r in Reason],
        stages=[s.value for s in Stage],
        agents=list(AGENT_OF_STAGE.values()),
        provider=models.provider.name,
        models=models.all_models,
    )


def build_runner(
    config: Config,
    project: Path,
    *,
    logger: logging.Logger | None = None,
    on_stage: StageListener | None = None,
    env: Mapping[str, str] | None = None,
    span_exporter: SpanExporter | None = None,
    metrics: telemetry.Metrics | None = None,
) -> CycleRunner:
    """Open the repo and memory, set up telemetry, recover from a crash, return a runner.

    A repository mid-merge, -rebase, -cherry-pick, -revert or -bisect is refused
    (:class:`~hephaestus.agent.gitrepo.RepositoryBusy`). ``span_exporter`` adds an exporter
    (tests: an in-memory one), ``metrics`` another registry than the default one. Each
    runner has a tracer of its own: a second one leaves the first one's telemetry alone.
    """
    repo = _open_repo(project)
    sandbox = build_sandbox(config)
    with contextlib.ExitStack() as undo:  # on any failure, release what was taken so far
        lock = AgentLock(repo.agent_dir / "agent.lock")
        undo.callback(lock.release)
        memory = Memory(memory_path(config, repo))
        undo.callback(memory.close)
        handle = telemetry.setup_telemetry(
            config.telemetry,
            span_file=span_file_path(config, repo),
            models=configured_models(config),
            env=env,
            extra_exporter=span_exporter,
            metrics=metrics,
        )
        undo.callback(handle.shutdown)
        models = build_models(config, env, instruments=handle.instruments)
        undo.callback(models.close)
        _declare_series(handle.metrics, models)
        runner = CycleRunner(
            config,
            repo,
            models,
            memory,
            logger=logger,
            on_stage=on_stage,
            telemetry_handle=handle,
            sandbox=sandbox,
            lock=lock,
            streak=failure_streak(memory.recent(STREAK_LOOKBACK)),
        )
        recover(repo, memory, runner.workspaces_dir)
        handle.instruments.failure_streak(runner.streak.failures)
        undo.pop_all()
    return runner
