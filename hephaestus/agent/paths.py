"""Where the agent keeps its files in a target repository.

Cheap to import: the CLI's read-only commands need these paths without the whole agent.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hephaestus.agent.gitrepo import GitRepo
    from hephaestus.config import Config


def memory_path(config: Config, repo: GitRepo) -> Path:
    """The memory database path: configured, or ``.hephaestus/memory.db`` in the repo."""
    configured = config.agent.memory_path
    return Path(configured) if configured else repo.agent_dir / "memory.db"


def span_file_path(config: Config, repo: GitRepo) -> Path:
    """The local span file: configured, or ``.hephaestus/traces.jsonl`` in the repo."""
    configured = config.telemetry.traces_file
    return Path(configured) if configured else repo.agent_dir / "traces.jsonl"
