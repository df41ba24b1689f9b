"""The service's HTTP endpoints: metrics, health, readiness and a small JSON API.

Handlers compute each answer as ``(status, body, headers)`` and never raise into the
server: a malformed request gets a 4xx with a message that says what to fix; an unexpected
error a 500. The transport (Starlette on uvicorn) lives in :mod:`hephaestus.service.asgi`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hephaestus import telemetry
from hephaestus.agent import CORRELATION_ID_RULE, MemoryStoreError, check_correlation_id
from hephaestus.service.monitor import SystemMonitor
from hephaestus.service.queue import (
    DuplicateCorrelationId,
    ObjectiveQueue,
    QueuedObjective,
    QueueFull,
)

MAX_BODY_BYTES = 16 * 1024
MAX_OBJECTIVE_CHARS = 2_000
MAX_CYCLES_LIMIT = 500
_LOG = logging.getLogger("hephaestus.service.http")


class HTTPError(Exception):
    """A client error to answer with ``status`` and ``message`` as JSON."""

    def __init__(
        self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class ServiceAPI:
    """Routes and their handlers; the HTTP plumbing lives in :mod:`hephaestus.service.asgi`."""

    def __init__(self, monitor: SystemMonitor, queue: ObjectiveQueue) -> None:
        self.monitor = monitor
        self.queue = queue
        self.render_metrics = telemetry.MetricsRenderer(monitor.runner.metrics.registry)
        self.routes: dict[str, dict[str, Callable[..., tuple[int, Any, dict[str, str]]]]] = {
            "/metrics": {"GET": self.metrics},
            "/healthz": {"GET": self.healthz},
            "/readyz": {"GET": self.readyz},
            "/api/health": {"GET": self.health},
            "/api/cycles": {"GET": self.cycles},
            "/api/objectives": {"POST": self.objectives},
        }

    def metrics(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        """Prometheus text, or OpenMetrics with exemplars when the scraper accepts it."""
        body, content_type = self.render_metrics(request.headers.get("Accept"))
        return 200, body, {"Content-Type": content_type}

    def healthz(self, _request: Request) -> tuple[int, Any, dict[str, str]]:
        """Liveness: the process answers."""
        return 200, {"status": "ok"}, {}

    def readyz(self, _request: Request) -> tuple[int, Any, dict[str, str]]:
        """Readiness: 200 only when memory is writable and a cycle can run."""
        problems = self.monitor.problems()
        if problems:
            return 503, {"status": "not ready", "reasons": problems}, {}
        return 200, {"status": "ready"}, {}

    def health(self, _request: Request) -> tuple[int, Any, dict[str, str]]:
        """The system monitor's view."""
        return 200, self.monitor.health(queue_depth=len(self.queue)), {}

    def cycles(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        """Recent cycles from memory, newest first."""
        values = request.query.get("limit", ["20"])
        try:
            limit = int(values[-1])
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_CYCLES_LIMIT:
            raise HTTPError(
                HTTPStatus.BAD_REQUEST,
                f"limit must be an integer from 1 to {MAX_CYCLES_LIMIT}, got {values[-1]!r}",
            )
        try:
            rows = self.monitor.runner.memory.recent(limit)
        except MemoryStoreError as exc:
            raise HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, str(exc)) from None
        return 200, {"cycles": rows}, {}

    def objectives(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        """Queue an objective; answer with the correlation id its cycle will carry."""
        body = _objective_body(request)
        correlation_id = body.get("correlation_id") or str(uuid.uuid4())
        if self.monitor.runner.memory.find(correlation_id) is not None:
            raise HTTPError(
                HTTPStatus.CONFLICT, f"correlation_id {correlation_id!r} already names a cycle"
            )
        try:
            position = self.queue.push(
                QueuedObjective(" ".join(body["objective"].split()), correlation_id)
            )
        except DuplicateCorrelationId:
            raise HTTPError(
                HTTPStatus.CONFLICT, f"correlation_id {correlation_id!r} is already queued"
            ) from None
        except QueueFull as exc:
            raise HTTPError(
                HTTPStatus.SERVICE_UNAVAILABLE, f"{exc}; retry later", {"Retry-After": "30"}
            ) from None
        telemetry.StructuredLogger(_LOG, correlation_id).info("objective queued", position=position)
        return 202, {"status": "queued", "correlation_id": correlation_id, "position": position}, {}


def _objective_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("Content-Type", "application/json")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise HTTPError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"send the objective as application/json, not {content_type}",
        )
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "the body's JSON is nested too deeply") from None
    if not isinstance(body, dict):
        raise HTTPError(
            HTTPStatus.BAD_REQUEST, 'the body must be a JSON object like {"objective": "..."}'
        )
    unknown = sorted(set(body) - {"objective", "correlation_id"})
    if unknown:
        raise HTTPError(
            HTTPStatus.BAD_REQUEST,
            f"unknown field(s) {', '.join(unknown)}; allowed: objective, correlation_id",
        )
    objective = body.get("objective")
    if not isinstance(objective, str) or not objective.strip():
        raise HTTPError(HTTPStatus.BAD_REQUEST, "'objective' must be a non-empty string")
    if len(objective) > MAX_OBJECTIVE_CHARS:
        raise HTTPError(
            HTTPStatus.BAD_REQUEST,
            f"'objective' is {len(objective)} characters; at most "
            f"{MAX_OBJECTIVE_CHARS} are allowed",
        )
    correlation_id = body.get("correlation_id")
    if correlation_id is not None:
        try:
            check_correlation_id(correlation_id)
        except ValueError:
            raise HTTPError(
                HTTPStatus.BAD_REQUEST, f"'correlation_id' must be {CORRELATION_ID_RULE}"
            ) from None
    return body


class Request:
    """What a handler needs from an HTTP request."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: Any,
        body: bytes,
        params: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(target)
        self.method, self.path, self.headers, self.body = method, parts.path, headers, body
        self.query = parse_qs(parts.query)
        self.params = params or {}
