"""Shared fixtures: a sample target repo and a scripted LLM server."""

from __future__ import annotations

import io
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from factories import FakeClock, ScriptedLLMServer, make_target_repo
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytest_plugins = ["pytester"]  # runs the agent's own pytest plugins in-process


@pytest.fixture
def sample_repo(tmp_path: Path) -> Path:
    """A fresh git repo holding the bundled sample project."""
    return make_target_repo(tmp_path / "target", sample=True)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when a test advances it."""
    return FakeClock()


@pytest.fixture
def llm_server() -> Iterator[ScriptedLLMServer]:
    """A running scripted OpenAI-compatible server."""
    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def no_ambient_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's shell exports, every test sets the OTEL_* it is about."""
    from otlp_receiver import OTEL_VARIABLES

    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def require_binary(name: str, *aliases: str) -> str:
    """The path of ``name`` (or of an alias); skip without it locally, fail in CI (``CI=true``).

    Aliases cover binaries a distribution renames (Debian's ``prometheus-alertmanager``).
    """
    path = next(filter(None, map(shutil.which, (name, *aliases))), None)
    if path is None:
        message = f"{name} is not installed; `make test` installs it (Debian package)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Traced:
    """Telemetry set up as the agent does, with its spans kept in memory."""

    exporter: InMemorySpanExporter
    instruments: Any


@pytest.fixture
def traced() -> Iterator[Traced]:
    """A telemetry of the test's own: pass ``instruments`` to what records, read ``exporter``."""
    from hephaestus import telemetry
    from hephaestus.config import TelemetryConfig

    exporter = InMemorySpanExporter()
    handle = telemetry.setup_telemetry(
        TelemetryConfig(),
        span_file=None,
        models=["model-a", "model-p", "model-f"],
        env={},
        extra_exporter=exporter,
    )
    yield Traced(exporter, handle.instruments)
    handle.shutdown()


@pytest.fixture
def spans(traced: Traced) -> InMemorySpanExporter:
    """The spans recorded through the ``instruments`` fixture."""
    return traced.exporter


@pytest.fixture
def instruments(traced: Traced) -> Any:
    """The instruments whose spans the ``spans`` fixture keeps."""
    return traced.instruments


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The ``hephaestus`` loggers writing JSON lines into a buffer, restored afterwards."""
    from hephaestus.telemetry import configure_logging

    logger = logging.getLogger("hephaestus")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    stream = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=stream)
    yield stream
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]
