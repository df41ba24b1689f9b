"""The one package that knows OpenTelemetry and prometheus-client.

The agent calls :func:`setup_telemetry` once and then the small helpers re-exported here
(``cycle_span``, ``stage_span``, ``chat_span``, ``tool_span``, ``record_cycle``…).

Names are imported on first use (PEP 562): ``hephaestus --help`` and the pytest plugin,
which lives in this package and runs in every validation subprocess, do not pay for the
OpenTelemetry SDK and prometheus-client they do not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOME = {
    "ChatCall": "instrument",
    "CycleSpan": "instrument",
    "MetricsCollector": "collector",
    "SpanExporter": "opentelemetry.sdk.trace.export",
    "StructuredLogger": "logs",
    "Telemetry": "setup",
    "ToolRun": "instrument",
    "add_event": "instrument",
    "breaker_transition": "events",
    "chat_span": "instrument",
    "configure_logging": "logs",
    "cycle_span": "instrument",
    "declare_breaker": "events",
    "declare_series": "setup",
    "exemplar": "instrument",
    "record_cycle": "instrument",
    "render_metrics": "exposition",
    "resume_failure_streak": "instrument",
    "set_attributes": "instrument",
    "setup_telemetry": "setup",
    "stage_span": "instrument",
    "tool_span": "instrument",
}
__all__ = [
    "ChatCall",
    "CycleSpan",
    "MetricsCollector",
    "SpanExporter",
    "StructuredLogger",
    "Telemetry",
    "ToolRun",
    "add_event",
    "breaker_transition",
    "chat_span",
    "configure_logging",
    "cycle_span",
    "declare_breaker",
    "declare_series",
    "exemplar",
    "record_cycle",
    "render_metrics",
    "resume_failure_streak",
    "set_attributes",
    "setup_telemetry",
    "stage_span",
    "tool_span",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(home if "." in home else f"{__name__}.{home}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from hephaestus.telemetry.collector import MetricsCollector
    from hephaestus.telemetry.events import breaker_transition, declare_breaker
    from hephaestus.telemetry.exposition import render_metrics
    from hephaestus.telemetry.instrument import (
        ChatCall,
        CycleSpan,
        ToolRun,
        add_event,
        chat_span,
        cycle_span,
        exemplar,
        record_cycle,
        resume_failure_streak,
        set_attributes,
        stage_span,
        tool_span,
    )
    from hephaestus.telemetry.logs import StructuredLogger, configure_logging
    from hephaestus.telemetry.setup import Telemetry, declare_series, setup_telemetry
