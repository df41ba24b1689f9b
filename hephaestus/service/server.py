"""uvicorn on a background thread, beside the cycle loop that owns the main thread and signals.

uvicorn installs signal handlers only from the main thread, so serving from this thread
leaves SIGTERM/SIGINT/SIGALRM to :mod:`hephaestus.service.shutdown`. The protocol is
uvicorn's h11 protocol with two additions uvicorn does not have: a read deadline (a client
that connects and sends its request slowly, or not at all, is cut off) and precise status
codes for requests that cannot be read (414, 431, 501 instead of a blanket 400).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from hephaestus.config import ServiceConfig

_FINISHED_READING = frozenset({h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR})
_STARTUP_TIMEOUT = 10.0
MAX_TARGET_BYTES = 8 * 1024  # of the request line; longer ones get 414
_LOG = logging.getLogger("hephaestus.service.http")


@dataclass(frozen=True)
class HTTPLimits:
    """What one client may hold: connections, time to send a request, size of its head."""

    max_connections: int = 1000
    read_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_head_bytes: int = 16 * 1024
    shutdown_timeout: float = 3.0

    @classmethod
    def from_config(cls, service: ServiceConfig) -> HTTPLimits:
        """The limits configured in ``[service]``."""
        return cls(
            max_connections=service.max_connections,
            read_timeout=service.read_timeout,
            keep_alive_timeout=service.keep_alive_timeout,
        )


class ListenError(RuntimeError):
    """The address cannot be bound; the message names it and the fix."""


class _Forward(logging.Handler):
    """Hands uvicorn's records to our loggers, so they come out as our JSON lines."""

    def emit(self, record: logging.LogRecord) -> None:
        _LOG.handle(record)


def _forward_uvicorn_logs() -> None:
    uvicorn_log = logging.getLogger("uvicorn")
    uvicorn_log.setLevel(logging.WARNING)  # not its start-up banner; its warnings and errors
    uvicorn_log.propagate = False
    if not any(isinstance(h, _Forward) for h in uvicorn_log.handlers):
        uvicorn_log.addHandler(_Forward())


class _Connection(h11.Connection):
    """An h11 connection that remembers why the peer's bytes could not be parsed."""

    error: h11.RemoteProtocolError | None = None
    line_length = 0  # bytes of the current request line received so far
    _line_done = False

    def receive_data(self, data: bytes) -> None:
        if not self._line_done:
            end = data.find(b"\n")
            self.line_length += len(data) if end < 0 else end
            self._line_done = end >= 0
        super().receive_data(data)

    def start_next_cycle(self) -> None:
        super().start_next_cycle()
        self.line_length, self._line_done = 0, False

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a read deadline and precise errors for unreadable requests."""

    limits = HTTPLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guarded_conn = _Connection(h11.SERVER, self.limits.max_head_bytes)
        self.conn = self.guarded_conn
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the read deadline; send small writes at once.

        asyncio sets TCP_NODELAY only on sockets whose protocol number is TCP, which a socket
        handed to uvicorn is not: without it, Nagle's algorithm and the client's delayed ACK
        hold every keep-alive response's body back by some 40 ms.
        """
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Parse; a fully received request stops the read deadline."""
        super().data_received(data)
        if self.conn.their_state in _FINISHED_READING:
            self._disarm()

    def on_response_complete(self) -> None:
        """Keep-alive: the next request on this connection gets its own deadline."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.limits.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing() or self.conn.their_state in _FINISHED_READING:
            return
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            message = f"the request was not received within {self.limits.read_timeout:g}s"
            self.transport.write(_raw_response(408, message))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Answer a request h11 could not parse with the most precise status, then close."""
        status, message = _unreadable(
            self.guarded_conn.error, self.guarded_conn.line_length, self.limits.max_head_bytes
        )
        self.transport.write(_raw_response(status, message))
        self.transport.close()


def _unreadable(
    error: h11.RemoteProtocolError | None, line_length: int, limit: int
) -> tuple[int, str]:
    if line_length > MAX_TARGET_BYTES:
        return 414, f"the request line is longer than {MAX_TARGET_BYTES} bytes"
    hint = error.error_status_hint if error is not None else 400
    if hint == 431:
        return 431, f"the request head is larger than {limit} bytes"
    detail = str(error)[:200] if error is not None else "unreadable request"
    return hint, f"invalid HTTP request: {detail}"


def _raw_response(status: int, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def _protocol_with(limits: HTTPLimits) -> type[GuardedH11Protocol]:
    return type("Protocol", (GuardedH11Protocol,), {"limits": limits})


class ServiceHTTPServer:
    """An ASGI app served by uvicorn on a daemon thread; :meth:`stop` closes the socket.

    The socket is bound here, so a busy port fails at construction and ``address`` is known
    before :meth:`start`.
    """

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        limits: HTTPLimits | None = None,
        on_stop: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.limits = limits or HTTPLimits()
        self.on_stop = list(on_stop)
        try:
            self._socket = socket.create_server((host, port), backlog=2048)
        except OSError as exc:
            raise ListenError(
                f"cannot listen on {host}:{port}: {exc.strerror}; stop what uses it or pick "
                "another --port/--host"
            ) from None
        _forward_uvicorn_logs()
        config = uvicorn.Config(
            app,
            http=_protocol_with(self.limits),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            limit_concurrency=self.limits.max_connections,
            timeout_keep_alive=self.limits.keep_alive_timeout,  # type: ignore[arg-type]
            timeout_graceful_shutdown=self.limits.shutdown_timeout,  # type: ignore[arg-type]
            backlog=2048,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="hephaestus-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (useful with port 0)."""
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> None:
        """Serve on a daemon thread; return once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop accepting, let running requests finish (bounded), close the socket."""
        for callback in self.on_stop:
            callback()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(self.limits.shutdown_timeout + 5)
        self._socket.close()
