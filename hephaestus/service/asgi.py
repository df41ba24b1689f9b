"""The service's routes as a Starlette app: transport only, every answer is computed elsewhere.

Each route maps HTTP methods to a handler ``handler(request) -> (status, body, headers)``
(see :class:`hephaestus.service.http.ServiceAPI`). This module adds what HTTP asks of every
route: HEAD wherever GET exists, OPTIONS with ``Allow``, 405 with ``Allow`` for any other
method, a body-size limit, JSON errors, and 505 for HTTP versions other than 1.0 and 1.1.
Handlers are synchronous (they read SQLite and files) and run in Starlette's thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from hephaestus.service.http import MAX_BODY_BYTES, HTTPError, Request
from hephaestus.service.server import MAX_TARGET_BYTES

Handler = Callable[[Request], tuple[int, Any, dict[str, str]]]
Routes = Mapping[str, Mapping[str, Handler]]
STATIC_DIR = Path(__file__).parent / "static"
_LOG = logging.getLogger("hephaestus.service.http")
_HTTP_VERSIONS = frozenset({"1.0", "1.1"})


def build_app(routes: Routes) -> Starlette:
    """A Starlette app serving ``routes`` and the dashboard's static files."""
    app = Starlette(
        routes=[
            *(Route(path, _Dispatch(path, methods)) for path, methods in routes.items()),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        exception_handlers={HTTPException: _http_exception, Exception: _internal_error},
    )
    app.add_middleware(_ProtocolGuard)
    return app


class _Dispatch:
    """One path: picks the handler by method and turns its answer into a response."""

    def __init__(self, path: str, methods: Mapping[str, Handler]) -> None:
        self.path = path
        self.methods = dict(methods)
        self.allow = ", ".join(self.methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = StarletteRequest(scope, receive)
        response = await self._respond(request)
        await response(scope, receive, send)

    async def _respond(self, request: StarletteRequest) -> Response:
        method = request.method
        if method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": self.allow})
        handler = self.methods.get("GET" if method == "HEAD" else method)
        if handler is None:
            return _error(
                HTTPError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    f"{method} is not allowed on {request.url.path}; use {self.allow}",
                    {"Allow": self.allow},
                )
            )
        try:
            body = await _bounded_body(request) if method not in ("GET", "HEAD") else b""
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            ours = Request(method, target, request.headers, body, dict(request.path_params))
            status, content, headers = await run_in_threadpool(handler, ours)
        except HTTPError as exc:
            return _error(exc)
        return _response(int(status), content, dict(headers))


async def _bounded_body(request: StarletteRequest) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(f"more than {MAX_BODY_BYTES}")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: str) -> HTTPError:
    return HTTPError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"the body is {size} bytes; at most {MAX_BODY_BYTES} are allowed",
        {"Connection": "close"},  # do not read (or drain) the rest of a large body
    )


def _response(status: int, content: Any, headers: dict[str, str]) -> Response:
    media_type = headers.pop("Content-Type", "application/json")
    if isinstance(content, AsyncIterator):
        return StreamingResponse(content, status, headers, media_type)
    if isinstance(content, bytes | str):
        return Response(content, status, headers, media_type)
    return JSONResponse(_jsonable(content), status, headers)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _error(exc: HTTPError) -> Response:
    return JSONResponse({"error": str(exc)}, int(exc.status), exc.headers)


async def _http_exception(request: StarletteRequest, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == HTTPStatus.NOT_FOUND:
        message = f"no such endpoint {path}; see /api/health"
    elif exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        allow = (exc.headers or {}).get("Allow", "GET, HEAD")
        message = f"{request.method} is not allowed on {path}; use {allow}"
    else:
        message = str(exc.detail)
    return JSONResponse({"error": message}, exc.status_code, exc.headers)


async def _internal_error(_request: StarletteRequest, _exc: Exception) -> Response:
    _LOG.exception("unhandled error in HTTP handler", exc_info=_exc)
    return JSONResponse({"error": "internal error; see the logs"}, 500)


class _ProtocolGuard:
    """Refuses what no route should see: unknown HTTP versions and oversized bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = _refusal(scope)
            if refusal is not None:
                await _error(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refusal(scope: Scope) -> HTTPError | None:
    if scope.get("http_version") not in _HTTP_VERSIONS:
        return HTTPError(
            HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
            f"HTTP/{scope.get('http_version')} is not supported; use HTTP/1.1",
            {"Connection": "close"},
        )
    target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    if target > MAX_TARGET_BYTES:
        return HTTPError(
            HTTPStatus.REQUEST_URI_TOO_LONG,
            f"the request target is longer than {MAX_TARGET_BYTES} bytes",
            {"Connection": "close"},
        )
    for name, value in scope["headers"]:
        if name == b"content-length" and int(value) > MAX_BODY_BYTES:
            return _too_large(value.decode())
    return None
