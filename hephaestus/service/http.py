"""The service's HTTP endpoints: metrics, health, readiness and a small JSON API.

Handlers run on their own threads and never raise into the server: a malformed request
gets a 4xx with a message that says what to fix; an unexpected error a 500.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hephaestus import telemetry
from hephaestus.agent.memory import MemoryStoreError
from hephaestus.agent.models import CORRELATION_ID_RULE, check_correlation_id
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
    """Routes and their handlers; the HTTP plumbing lives in :class:`_Handler`."""

    def __init__(self, monitor: SystemMonitor, queue: ObjectiveQueue) -> None:
        self.monitor = monitor
        self.queue = queue
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
        body, content_type = telemetry.render_metrics(request.headers.get("Accept"))
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
        _LOG.info(
            "objective queued", extra={"correlation_id": correlation_id, "position": position}
        )
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

    def __init__(self, method: str, target: str, headers: Any, body: bytes) -> None:
        parts = urlsplit(target)
        self.method, self.path, self.headers, self.body = method, parts.path, headers, body
        self.query = parse_qs(parts.query)


class _Handler(BaseHTTPRequestHandler):
    """Dispatches requests to :attr:`api`'s routes (bound per server by :func:`_handler_for`)."""

    api: ServiceAPI
    server_version = "hephaestus"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.debug("http request", extra={"request": format % args})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        try:
            status, body, headers = self._route(method)
        except HTTPError as exc:
            status, body, headers = exc.status, {"error": str(exc)}, exc.headers
        except Exception:
            _LOG.exception("unhandled error in HTTP handler")
            status, body, headers = 500, {"error": "internal error; see the logs"}, {}
        self._send(int(status), body, headers)

    def _route(self, method: str) -> tuple[int, Any, dict[str, str]]:
        path = urlsplit(self.path).path
        methods = self.api.routes.get(path.rstrip("/") or "/")
        if methods is None:
            self._drain()
            raise HTTPError(HTTPStatus.NOT_FOUND, f"no such endpoint {path}; see /api/health")
        if method not in methods:
            self._drain()
            raise HTTPError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{method} is not allowed on {path}; use {', '.join(methods)}",
                {"Allow": ", ".join(methods)},
            )
        return methods[method](Request(method, self.path, self.headers, self._body()))

    def _length(self) -> int:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # we do not read chunked bodies: framing is lost
            raise HTTPError(
                HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length, not chunked"
            )
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = None
        if length is None or length < 0:
            # the request's framing is lost: answer 400, then close (RFC 9112 §6.3)
            self.close_connection = True
            raise HTTPError(
                HTTPStatus.BAD_REQUEST,
                "Content-Length is not a number"
                if length is None
                else "Content-Length is negative",
            )
        return length

    def _body(self) -> bytes:
        length = self._length()
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise HTTPError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body is {length} bytes; at most {MAX_BODY_BYTES} are allowed",
            )
        return self.rfile.read(length) if length else b""

    def _drain(self) -> None:
        try:
            length = self._length()
        except HTTPError:
            length = 0
        if 0 < length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body, default=str).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _handler_for(api: ServiceAPI) -> type[_Handler]:
    return type("Handler", (_Handler,), {"api": api})


class ServiceHTTPServer:
    """The endpoints on a background thread; :meth:`stop` closes the socket."""

    def __init__(self, api: ServiceAPI, host: str, port: int) -> None:
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(api))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="hephaestus-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (useful with port 0)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Serve on a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
