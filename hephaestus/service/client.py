"""``hephaestus status``: a running service's health and KPIs, read over its HTTP API.

The exit code is the verdict: 0 healthy, 1 on a breach (a KPI off target, a component in
error, not ready), 2 when the service cannot be reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

EXIT_HEALTHY, EXIT_BREACH, EXIT_UNREACHABLE = 0, 1, 2
MAX_FAILURES_SHOWN = 5


class ServiceUnreachable(RuntimeError):
    """No answer, or not a Hephaestus service; the message is one line."""


@dataclass
class ServiceStatus:
    """What ``status`` shows and decides on."""

    url: str
    health: dict[str, Any]
    dashboard: dict[str, Any]
    ready: bool
    not_ready: list[str]

    @property
    def breaches(self) -> list[str]:
        """Why this is not healthy: breached KPIs, components in error, readiness."""
        found = [
            f"{k['title']} {k['display']} (target {k['target_display']})"
            for k in self.dashboard.get("kpis", [])
            if k["state"] == "breach"
        ]
        found += [
            f"{name}: {c.get('reason') or c['status']}"
            for name, c in self.health.get("components", {}).items()
            if c["status"] != "ok"
        ]
        if not self.ready:
            found += [f"not ready: {reason}" for reason in self.not_ready]
        return found

    @property
    def exit_code(self) -> int:
        """0 when healthy, 1 on any breach."""
        return EXIT_BREACH if self.breaches else EXIT_HEALTHY

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The latest failed cycles, newest first."""
        failed = [c for c in self.dashboard.get("cycles", []) if c["outcome"] == "failed"]
        return failed[:MAX_FAILURES_SHOWN]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``status --format json``."""
        return {
            "url": self.url,
            "healthy": not self.breaches,
            "exit_code": self.exit_code,
            "breaches": self.breaches,
            "status": self.health.get("status"),
            "ready": self.ready,
            "version": self.health.get("version"),
            "uptime_seconds": self.health.get("uptime_seconds"),
            "cycles_run": self.health.get("cycles_run"),
            "queue_depth": self.health.get("queue_depth"),
            "open_breakers": self.health.get("open_breakers", []),
            "kpis": self.dashboard.get("kpis", []),
            "last_failures": self.failures,
        }


def fetch_status(url: str, timeout: float = 10.0) -> ServiceStatus:
    """Ask the service at ``url`` for its health, readiness and dashboard document."""
    base = url.rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=timeout) as client:
            health = _json(client.get("/api/health"), base)
            ready = client.get("/readyz")
            dashboard = _json(client.get("/api/dashboard"), base)
    except httpx.HTTPError as exc:
        raise ServiceUnreachable(f"cannot reach the service at {base}: {exc}") from None
    reasons = ready.json().get("reasons", []) if ready.status_code == 503 else []
    return ServiceStatus(base, health, dashboard, ready.status_code == 200, reasons)


def _json(response: httpx.Response, base: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        raise ServiceUnreachable(
            f"{base}{response.url.path} answered HTTP {response.status_code}; is this a "
            "Hephaestus service (hephaestus serve)?"
        )
    return body
