"""The one package that knows OpenTelemetry and prometheus-client.

The agent calls :func:`setup_telemetry` and passes the :class:`Instruments` it returns to
whatever records (``cycle_span``, ``stage_span``, ``chat_span``, ``tool_span``,
``record_cycle``…); :class:`Metrics` takes a registry the way prometheus-client does, the
default registry being the default. Nothing here keeps module-level telemetry state.

Names are imported on first use: the pytest plugin, which lives here and runs in every
validation subprocess, and ``hephaestus --help`` do not pay for the OpenTelemetry SDK and
prometheus-client they do not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hephaestus._exports import lazy_exports

if TYPE_CHECKING:
    from hephaestus.telemetry.catalog import Metrics, default_metrics
    from hephaestus.telemetry.collector import MetricsCollector
    from hephaestus.telemetry.events import (
        breaker_transition,
        declare_breaker,
        declare_retries,
        install_retry_hooks,
        qualified_name,
    )
    from hephaestus.telemetry.exposition import MetricsRenderer
    from hephaestus.telemetry.instrument import (
        ChatCall,
        CycleSpan,
        Instruments,
        ToolRun,
        add_event,
        exemplar,
        set_attributes,
    )
    from hephaestus.telemetry.logs import StructuredLogger, configure_logging
    from hephaestus.telemetry.setup import SpanExporter, Telemetry, declare_series, setup_telemetry

__all__ = [
    "ChatCall",
    "CycleSpan",
    "Instruments",
    "Metrics",
    "MetricsCollector",
    "MetricsRenderer",
    "SpanExporter",
    "StructuredLogger",
    "Telemetry",
    "ToolRun",
    "add_event",
    "breaker_transition",
    "configure_logging",
    "declare_breaker",
    "declare_retries",
    "declare_series",
    "default_metrics",
    "exemplar",
    "install_retry_hooks",
    "qualified_name",
    "set_attributes",
    "setup_telemetry",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "ChatCall": "instrument",
        "CycleSpan": "instrument",
        "Instruments": "instrument",
        "Metrics": "catalog",
        "MetricsCollector": "collector",
        "MetricsRenderer": "exposition",
        "SpanExporter": "setup",
        "StructuredLogger": "logs",
        "Telemetry": "setup",
        "ToolRun": "tools",
        "add_event": "spans",
        "breaker_transition": "events",
        "configure_logging": "logs",
        "declare_breaker": "events",
        "declare_retries": "events",
        "declare_series": "setup",
        "default_metrics": "catalog",
        "exemplar": "spans",
        "install_retry_hooks": "events",
        "qualified_name": "events",
        "set_attributes": "spans",
        "setup_telemetry": "setup",
    },
)
