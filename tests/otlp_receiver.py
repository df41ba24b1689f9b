"""A real OTLP/HTTP traces receiver for wire tests.

A ``ThreadingHTTPServer`` on ``127.0.0.1:0`` that accepts ``POST /v1/traces`` with
``Content-Type: application/x-protobuf`` (optionally gzip-encoded), decodes the
``ExportTraceServiceRequest`` with opentelemetry-proto and keeps every span as a flat dict.

Modes: ``"ok"`` answers 200 with an empty ``ExportTraceServiceResponse``; ``"unavailable"``
answers 503 to every export; ``"blackhole"`` reads the request and never answers, until the
receiver is closed.
"""

from __future__ import annotations

import gzip
import select
import socket
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from factories import eventually
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from prometheus_client import REGISTRY

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
MODES = ("ok", "unavailable", "blackhole")
_STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_KIND_NAMES = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}


@dataclass
class ReceivedRequest:
    """One HTTP request the receiver got, and the status it answered (``None``: never)."""

    method: str
    path: str
    headers: dict[str, str]
    status: int | None = None
    spans: int = 0
    abandoned: threading.Event = field(default_factory=threading.Event)  # the client hung up


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP ``AnyValue``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(items: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list → dict."""
    return {item.key: any_value(item.value) for item in items}


def flatten(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """Every span of an export request as a flat dict (ids as lower-case hex)."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "name": span.name,
                        "kind": _KIND_NAMES.get(span.kind, str(span.kind)),
                        "start_ns": span.start_time_unix_nano,
                        "end_ns": span.end_time_unix_nano,
                        "attributes": attributes(span.attributes),
                        "status": _STATUS_NAMES.get(span.status.code, str(span.status.code)),
                        "status_message": span.status.message,
                        "events": [
                            {"name": e.name, "attributes": attributes(e.attributes)}
                            for e in span.events
                        ],
                        "scope": scope_spans.scope.name,
                        "resource": resource,
                    }
                )
    return spans


class SpanStore:
    """Spans received by a test receiver, with the queries tests make of them.

    Subclasses keep ``spans`` and a ``_lock``; both receivers share these methods.
    """

    spans: list[dict[str, Any]]
    _lock: threading.Lock

    def snapshot(self) -> list[dict[str, Any]]:
        """A copy of the spans received so far."""
        with self._lock:
            return list(self.spans)

    def trace_ids(self) -> set[str]:
        """The distinct trace ids received so far."""
        return {s["trace_id"] for s in self.snapshot()}

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0
    ) -> bool:
        """Poll ``predicate(spans)`` until it is true or ``timeout`` passes; its last verdict."""
        return bool(eventually(lambda: predicate(self.snapshot()), timeout, interval=0.02))


@dataclass
class OTLPReceiver(SpanStore):
    """A running OTLP/HTTP traces receiver; use as a context manager."""

    mode: str = "ok"
    spans: list[dict[str, Any]] = field(default_factory=list)
    requests: list[ReceivedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="otlp-receiver", daemon=True
        )

    @property
    def endpoint(self) -> str:
        """The base URL (what ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def traces_url(self) -> str:
        """The full traces URL (what ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` takes)."""
        return self.endpoint + TRACES_PATH

    def _received(self, request: ReceivedRequest, spans: list[dict[str, Any]]) -> None:
        request.spans = len(spans)
        with self._lock:
            self.spans.extend(spans)

    def _log(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def __enter__(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release blackholed requests."""
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def _hung_up(conn: socket.socket) -> bool:
    """Whether the client closed its end of ``conn`` (readable, and nothing to read)."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _decode_body(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding in ("", "identity"):
        return raw
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def _handler_class(receiver: OTLPReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _answer(
            self,
            request: ReceivedRequest,
            status: int,
            body: bytes,
            content_type: str = "text/plain",
        ) -> None:
            request.status = status
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            request = ReceivedRequest("GET", self.path, dict(self.headers))
            receiver._log(request)
            self._answer(request, 405, b"POST only\n")

        def do_POST(self) -> None:
            request = ReceivedRequest("POST", self.path, dict(self.headers))
            receiver._log(request)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if receiver.mode == "blackhole":  # hold the connection open, answer nothing
                while not receiver._closing.wait(0.02):
                    if _hung_up(self.connection):
                        request.abandoned.set()
                        break
                self.close_connection = True
                return
            if self.path.split("?")[0] != TRACES_PATH:
                self._answer(request, 404, b"unknown path\n")
                return
            if self.headers.get("Content-Type", "").split(";")[0].strip() != PROTOBUF:
                self._answer(request, 415, b"application/x-protobuf only\n")
                return
            if receiver.mode == "unavailable":
                self._answer(request, 503, b"try later\n")
                return
            try:
                body = _decode_body(raw, self.headers.get("Content-Encoding", ""))
                export = ExportTraceServiceRequest.FromString(body)
            except (OSError, ValueError, zlib.error, DecodeError) as exc:
                self._answer(request, 400, f"bad request: {exc}\n".encode())
                return
            receiver._received(request, flatten(export))
            self._answer(request, 200, ExportTraceServiceResponse().SerializeToString(), PROTOBUF)

    return Handler


# -- shared by the wire tests ---------------------------------------------------------------
OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
)


def closed_port_url() -> str:
    """The URL of a local port nothing listens on (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def export_failures() -> float:
    """``hephaestus_telemetry_export_failures_total{signal="traces"}`` now."""
    value = REGISTRY.get_sample_value(
        "hephaestus_telemetry_export_failures_total", {"signal": "traces"}
    )
    return value or 0.0
