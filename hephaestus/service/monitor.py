"""The system monitor behind ``/api/health`` and ``/readyz``: uptime, last cycle, components."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hephaestus import __version__
from hephaestus.agent.memory import MemoryStoreError
from hephaestus.agent.models import CycleResult
from hephaestus.agent.orchestrator import CycleRunner
from hephaestus.agent.workspace import WorkspaceError, ensure_writable_dir
from hephaestus.llm.client import RoleModels


def llm_status(models: RoleModels) -> dict[str, Any]:
    """Provider, models and breaker states for ``/api/health``.

    ``error`` when a role has every breaker open (its stage would fail fast),
    ``degraded`` when any breaker is open.
    """
    breakers = {b.name: b.state.value for b in models.breakers.values()}
    status: dict[str, Any] = {
        "status": "ok",
        "provider": models.provider.name,
        "models": list(models.all_models),
        "breakers": breakers,
    }
    blocked = models.open_roles()
    if blocked:
        status |= {
            "status": "error",
            "reason": f"every circuit breaker is open for {', '.join(blocked)}",
        }
    elif "open" in breakers.values():
        status["status"] = "degraded"
    return status


@dataclass
class SystemMonitor:
    """Tracks what the service did and checks what it needs to keep doing it."""

    runner: CycleRunner
    started_at: float = field(default_factory=time.time)
    cycles_run: int = 0
    last: CycleResult | None = None
    stopping: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cycle_finished(self, result: CycleResult) -> None:
        """Remember the latest cycle."""
        with self._lock:
            self.cycles_run += 1
            self.last = result

    @property
    def consecutive_failures(self) -> int:
        """The runner's failure streak: what the gauge shows, resumed across restarts."""
        return self.runner.streak.failures

    def components(self) -> dict[str, dict[str, Any]]:
        """Status of each part the service depends on (``ok`` or ``error`` with a reason)."""
        return {
            "memory": self._memory(),
            "repository": self._repository(),
            "workspace": self._workspace(),
            "llm": llm_status(self.runner.models),
            "sandbox": self.runner.sandbox.status(),
        }

    def problems(self) -> list[str]:
        """Why the service cannot run a cycle now; empty when ready."""
        found = [
            f"{name}: {status['reason']}"
            for name, status in self.components().items()
            if status["status"] == "error"
        ]
        if self.stopping:
            found.append("service: shutting down")
        return found

    def _memory(self) -> dict[str, Any]:
        try:
            self.runner.memory.check_writable()
        except MemoryStoreError as exc:
            return {"status": "error", "reason": str(exc)}
        return {"status": "ok", "path": str(self.runner.memory.path)}

    def _repository(self) -> dict[str, Any]:
        repo = self.runner.repo
        head = repo.head()
        if head is None:
            return {"status": "error", "reason": "the repository has no commits"}
        busy = repo.operation_in_progress()
        if busy is not None:  # every cycle would fail at the commit: not ready
            return {"status": "error", "reason": f"the repository is in the middle of {busy}"}
        return {"status": "ok", "path": str(repo.root), "head": head}

    def _workspace(self) -> dict[str, Any]:
        parent = self.runner.workspaces_dir
        try:
            ensure_writable_dir(parent)
        except WorkspaceError as exc:
            return {"status": "error", "reason": str(exc)}
        return {"status": "ok", "path": str(parent)}

    def health(self, queue_depth: int = 0) -> dict[str, Any]:
        """The ``/api/health`` document."""
        components = self.components()
        with self._lock:
            last = self.last
            body: dict[str, Any] = {
                "status": "ok"
                if all(c["status"] == "ok" for c in components.values())
                else "degraded",
                "open_breakers": sorted(
                    name
                    for name, state in components["llm"].get("breakers", {}).items()
                    if state == "open"
                ),
                "version": __version__,
                "uptime_seconds": round(time.time() - self.started_at, 3),
                "started_at": self.started_at,
                "cycles_run": self.cycles_run,
                "consecutive_failures": self.consecutive_failures,
                "queue_depth": queue_depth,
                "stopping": self.stopping,
                "components": components,
                "last_cycle": None,
            }
        if last is not None:
            body["last_cycle"] = {
                "cycle_number": last.cycle_number,
                "outcome": last.outcome.value,
                "reason": last.reason.value,
                "correlation_id": last.correlation_id,
                "trace_id": last.trace_id,
                "commit": last.commit_sha,
                "age_seconds": round(time.time() - last.finished_at, 3),
            }
        return body
