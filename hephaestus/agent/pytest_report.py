"""The one pytest plugin the validation subprocess loads: the collected count, the trace join.

Loaded with ``-p hephaestus.agent.pytest_report``. It writes ``{"collected": N}`` to the
file named by ``HEPHAESTUS_PYTEST_REPORT`` once collection is done (deselected tests and
``items.clear()`` included), so the agent can refuse a run whose suite shrank or vanished
whatever pytest's exit code says. When the agent passes a span file (telemetry on), it also
registers :mod:`hephaestus.telemetry.pytest_plugin`'s trace join: pytest looks every ``-p``
name up among the installed distributions' entry points first, which costs more than the
join itself, so the run names one plugin whether telemetry is on or off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from hephaestus.telemetry.conventions import SPAN_FILE_ENV

if TYPE_CHECKING:  # the agent imports this module for REPORT_ENV; pytest runs elsewhere
    import pytest

REPORT_ENV = "HEPHAESTUS_PYTEST_REPORT"
_MAX_REPORT_BYTES = 4096


def pytest_configure(config: pytest.Config) -> None:
    """Join the agent's trace when it named a span file (imported only then)."""
    if os.environ.get(SPAN_FILE_ENV):
        from hephaestus.telemetry import pytest_plugin

        pytest_plugin.pytest_configure(config)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Write how many test items survived collection."""
    target = os.environ.get(REPORT_ENV)
    if target:
        Path(target).write_text(json.dumps({"collected": len(session.items)}))


def read_report(path: Path) -> int | None:
    """The count a run reported in ``path`` (then removed); ``None`` when it reported nothing."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_REPORT_BYTES)
    except OSError:
        return None
    finally:
        path.unlink(missing_ok=True)
    try:
        collected = json.loads(raw)["collected"]
    except (ValueError, KeyError, TypeError):
        return None
    valid = isinstance(collected, int) and not isinstance(collected, bool) and collected >= 0
    return collected if valid else None
