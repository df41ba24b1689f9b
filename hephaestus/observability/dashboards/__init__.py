"""The four Grafana dashboards: Overview, Cycle pipeline, LLM and SLOs.

Panel queries read the catalog's metrics and the recording rules; graphs use
``$__rate_interval``, KPI stats use the window their target is defined over.
"""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from hephaestus.observability.dashboards.llm import llm
from hephaestus.observability.dashboards.overview import overview
from hephaestus.observability.dashboards.pipeline import pipeline
from hephaestus.observability.dashboards.slo import slos

__all__ = ["all_dashboards"]


def all_dashboards() -> dict[str, Dashboard]:
    """File stem (= uid) -> dashboard."""
    boards = (overview(), pipeline(), llm(), slos())
    return {str(board.uid): board for board in boards}
