"""KPIs and performance analysis over the memory database or a Prometheus server.

``PerformanceAnalyzer(measure).analyze_agent_performance()`` where ``measure`` returns
:class:`Measurements`; :func:`memory_analyzer` and :func:`prometheus_analyzer` build one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hephaestus._exports import lazy_exports

if TYPE_CHECKING:
    from hephaestus.performance.analyzer import PerformanceAnalyzer
    from hephaestus.performance.kpis import KPIS, evaluate, format_target, format_value
    from hephaestus.performance.measurements import Measurements, parse_window
    from hephaestus.performance.memory_source import from_memory
    from hephaestus.performance.prometheus_source import PrometheusError

__all__ = [
    "KPIS",
    "Measurements",
    "PerformanceAnalyzer",
    "PrometheusError",
    "evaluate",
    "format_target",
    "format_value",
    "from_memory",
    "memory_analyzer",
    "parse_window",
    "prometheus_analyzer",
]


# imported when asked for, not with the package: the command line's argument parser needs
# only parse_window, and the sources bring httpx and sqlite3
__getattr__ = lazy_exports(
    __name__,
    {
        "KPIS": "kpis",
        "Measurements": "measurements",
        "PerformanceAnalyzer": "analyzer",
        "PrometheusError": "prometheus_source",
        "evaluate": "kpis",
        "format_target": "kpis",
        "format_value": "kpis",
        "from_memory": "memory_source",
        "parse_window": "measurements",
    },
)


def memory_analyzer(path: Path, window_s: float) -> PerformanceAnalyzer:
    """An analyzer reading the memory database at ``path`` (read-only)."""
    from hephaestus.agent.memory import Memory
    from hephaestus.performance.analyzer import PerformanceAnalyzer
    from hephaestus.performance.measurements import Measurements
    from hephaestus.performance.memory_source import from_memory

    def measure() -> Measurements:
        if not path.exists():  # never create a database just to read it
            return Measurements(
                source=f"memory:{path}",
                window_s=window_s,
                notes=[f"no memory database at {path}: no cycle has run there yet"],
            )
        memory = Memory(path, writable=False)
        try:
            return from_memory(memory, window_s)
        finally:
            memory.close()

    return PerformanceAnalyzer(measure)


def prometheus_analyzer(url: str, window_s: float) -> PerformanceAnalyzer:
    """An analyzer querying the Prometheus server at ``url``."""
    from hephaestus.performance.analyzer import PerformanceAnalyzer
    from hephaestus.performance.prometheus_source import PrometheusSource

    def measure() -> Measurements:
        source = PrometheusSource(url)
        try:
            return source.measure(window_s)
        finally:
            source.close()

    return PerformanceAnalyzer(measure)
