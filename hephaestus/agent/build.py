"""Assemble a ready :class:`CycleRunner` from config: repo, provider, models, memory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from hephaestus.agent.gitrepo import GitRepo
from hephaestus.agent.memory import Memory
from hephaestus.agent.orchestrator import CycleRunner, StageListener
from hephaestus.agent.workspace import remove_stale_workspaces
from hephaestus.config import Config
from hephaestus.llm.base import Provider
from hephaestus.llm.client import RoleModels
from hephaestus.llm.offline import OFFLINE_MODEL, OfflineProvider


def build_models(config: Config, env: Mapping[str, str] | None = None) -> RoleModels:
    """The role models of the configured provider."""
    if config.agent.provider == "openai":
        from hephaestus.llm.openai import OpenAICompatibleProvider

        provider: Provider = OpenAICompatibleProvider(config.llm, env=env)
        return RoleModels(provider, config.llm.models)
    models = {role: [OFFLINE_MODEL] for role in config.llm.models}
    return RoleModels(OfflineProvider(seed=config.agent.seed), models)


def memory_path(config: Config, repo: GitRepo) -> Path:
    """The memory database path: configured, or ``.hephaestus/memory.db`` in the repo."""
    configured = config.agent.memory_path
    return Path(configured) if configured else repo.agent_dir / "memory.db"


def build_runner(config: Config, project: Path, *, logger: logging.Logger | None = None,
                 on_stage: StageListener | None = None,
                 env: Mapping[str, str] | None = None) -> CycleRunner:
    """Open the repo and memory, recover from an earlier crash, and return a runner."""
    repo = GitRepo.open(project)
    repo.require_head()
    repo.ignore_agent_dir()
    memory = Memory(memory_path(config, repo))
    try:
        models = build_models(config, env)
    except Exception:
        memory.close()
        raise
    runner = CycleRunner(config, repo, models, memory, logger=logger, on_stage=on_stage)
    remove_stale_workspaces(repo, runner.workspaces_dir)
    memory.mark_interrupted()
    return runner
