"""A real OTLP/gRPC traces receiver for wire tests.

A ``grpc.server`` on ``127.0.0.1:0`` implementing the collector's
``opentelemetry.proto.collector.trace.v1.TraceService/Export``; every span of every
``ExportTraceServiceRequest`` is kept as a flat dict, in the same shape as the OTLP/HTTP
receiver's (see :func:`otlp_receiver.flatten`).

Modes: ``"ok"`` answers each export with an empty ``ExportTraceServiceResponse``;
``"unavailable"`` aborts every export with ``grpc.StatusCode.UNAVAILABLE`` (the status a
collector under pressure sends, which exporters treat as retryable).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from otlp_receiver import SpanStore, flatten

MODES = ("ok", "unavailable")


@dataclass
class ReceivedCall:
    """One ``Export`` call the receiver got, and the status it answered with."""

    metadata: dict[str, Any]
    code: grpc.StatusCode | None = None
    spans: int = 0


@dataclass
class OTLPGrpcReceiver(SpanStore):
    """A running OTLP/gRPC traces receiver; use as a context manager."""

    mode: str = "ok"
    spans: list[dict[str, Any]] = field(default_factory=list)
    calls: list[ReceivedCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        self._lock = threading.Lock()
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-grpc")
        )
        add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("could not bind an OTLP/gRPC receiver on 127.0.0.1")

    @property
    def endpoint(self) -> str:
        """The URL the gRPC exporter takes: ``http://`` makes it connect without TLS."""
        return f"http://127.0.0.1:{self.port}"

    def answered(self) -> list[grpc.StatusCode | None]:
        """The status of each call received so far, in order."""
        with self._lock:
            return [call.code for call in self.calls]

    def _log(self, call: ReceivedCall) -> None:
        with self._lock:
            self.calls.append(call)

    def _received(self, call: ReceivedCall, spans: list[dict[str, Any]]) -> None:
        with self._lock:
            call.spans = len(spans)
            call.code = grpc.StatusCode.OK
            self.spans.extend(spans)

    def __enter__(self) -> OTLPGrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving at once, cancelling calls in flight."""
        self._server.stop(grace=None).wait(timeout=5)


class _TraceService(TraceServiceServicer):
    def __init__(self, receiver: OTLPGrpcReceiver) -> None:
        self._receiver = receiver

    def Export(  # the generated servicer's name
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        call = ReceivedCall(metadata=dict(context.invocation_metadata()))
        if self._receiver.mode == "unavailable":
            call.code = grpc.StatusCode.UNAVAILABLE
            self._receiver._log(call)
            context.abort(grpc.StatusCode.UNAVAILABLE, "try later")  # raises
        self._receiver._log(call)
        self._receiver._received(call, flatten(request))
        return ExportTraceServiceResponse()
