"""The dashboard a person opens at ``/``: KPIs, recent cycles, breakers, live over SSE.

One document (:meth:`Dashboard.document`) feeds the server-rendered page (readable without
JavaScript), ``/api/dashboard`` (``hephaestus status`` reads it) and the ``/api/events``
stream the page's script listens to. Everything is computed from the memory database and
the system monitor; the page's files ship in this package (no CDN, no build step).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from hephaestus.agent import MemoryStoreError
from hephaestus.performance import evaluate, format_target, format_value, from_memory
from hephaestus.service.monitor import SystemMonitor
from hephaestus.service.queue import ObjectiveQueue

WINDOW_S = 86400.0
RECENT = 50
POLL_S = 0.5  # how often a stream looks for news
HEARTBEAT_S = 5.0  # a snapshot at least this often, so ages and uptime move
_CACHE_S = 1.0
Answer = tuple[int, Any, dict[str, str]]
HTML = {"Content-Type": "text/html; charset=utf-8"}

TEMPLATES = Environment(
    loader=PackageLoader("hephaestus.service", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class Dashboard:
    """The page, its JSON document and its event stream."""

    def __init__(self, monitor: SystemMonitor, queue: ObjectiveQueue) -> None:
        self.monitor = monitor
        self.queue = queue
        self.closing = threading.Event()
        self._cached: tuple[float, tuple[Any, ...], dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self.routes = {
            "/": {"GET": self.index},
            "/api/dashboard": {"GET": self.snapshot},
            "/api/events": {"GET": self.events},
        }

    def close(self) -> None:
        """End every open event stream (the server is stopping)."""
        self.closing.set()

    def version(self) -> tuple[Any, ...]:
        """Changes whenever something on the page would: a cycle, the queue, a breaker."""
        runner = self.monitor.runner
        breakers = tuple(sorted((b.name, b.state.value) for b in runner.models.breakers.values()))
        return (
            self.monitor.cycles_run,
            runner.guard.running,
            len(self.queue),
            self.monitor.stopping,
            breakers,
        )

    def document(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-able values (cached for a second)."""
        version = self.version()
        with self._lock:
            cached = self._cached
            if cached and cached[1] == version and time.monotonic() - cached[0] < _CACHE_S:
                return cached[2]
        document = self._build()
        with self._lock:
            self._cached = (time.monotonic(), version, document)
        return document

    def _build(self) -> dict[str, Any]:
        health = self.monitor.health(queue_depth=len(self.queue))
        llm = health["components"]["llm"]
        document: dict[str, Any] = {
            "generated_at": time.time(),
            "window_s": WINDOW_S,
            "status": "stopping" if health["stopping"] else health["status"],
            "version": health["version"],
            "uptime_seconds": health["uptime_seconds"],
            "cycles_run": health["cycles_run"],
            "consecutive_failures": health["consecutive_failures"],
            "queue_depth": health["queue_depth"],
            "in_cycle": self.monitor.runner.guard.running,
            "open_breakers": health["open_breakers"],
            "breakers": llm.get("breakers", {}),
            "provider": llm.get("provider"),
            "components": {
                name: {"status": c["status"], "reason": c.get("reason")}
                for name, c in health["components"].items()
            },
            "kpis": [],
            "outcomes": {},
            "cycles": [],
            "error": None,
        }
        try:
            memory = self.monitor.runner.memory
            measured = from_memory(memory, WINDOW_S)
            rows = memory.recent(RECENT)
        except MemoryStoreError as exc:
            document["error"] = str(exc)
            return document
        document["kpis"] = [
            {**k, "display": format_value(k), "target_display": format_target(k)}
            for k in evaluate(measured)
        ]
        document["outcomes"] = measured.outcomes
        document["cycles"] = [_cycle(row) for row in rows]
        return document

    def index(self, _request: Any) -> Answer:
        """The page, rendered with the current document."""
        page = TEMPLATES.get_template("index.html").render(
            doc=self.document(), chart=_duration_chart(self.document()["cycles"])
        )
        return 200, page, dict(HTML)

    def snapshot(self, _request: Any) -> Answer:
        """``/api/dashboard``: the document as JSON."""
        return 200, self.document(), {"Cache-Control": "no-store"}

    def events(self, _request: Any) -> Answer:
        """``/api/events``: server-sent events, one ``snapshot`` whenever something changed."""
        headers = {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
        return 200, self._stream(), headers

    async def _stream(self) -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        sent_version: tuple[Any, ...] | None = None
        sent_at = 0.0
        while not self.closing.is_set():
            version = self.version()
            if version != sent_version or time.monotonic() - sent_at >= HEARTBEAT_S:
                document = await asyncio.to_thread(self.document)
                sent_version, sent_at = version, time.monotonic()
                yield f"event: snapshot\ndata: {json.dumps(document, default=str)}\n\n"
            await asyncio.sleep(POLL_S)


def _cycle(row: dict[str, Any]) -> dict[str, Any]:
    started = row.get("started_at") or 0.0
    finished = row.get("finished_at")
    return {
        "cycle_number": row["cycle_number"],
        "correlation_id": row["correlation_id"],
        "trace_id": row.get("trace_id") or "",
        "status": row["status"],
        "outcome": row.get("outcome") or "running",
        "reason": row.get("reason") or "",
        "started_at": started,
        "duration_s": round(finished - started, 3) if finished else None,
        "objective": row.get("objective") or "",
        "commit": (row.get("commit_sha") or "")[:10],
        "model": row.get("model") or "",
    }


def _duration_chart(cycles: list[dict[str, Any]], width: int = 600, height: int = 120) -> list:
    """Bars of the recent cycles' durations, oldest left: ``x, y, w, h, outcome, title``."""
    done = [c for c in reversed(cycles) if c["duration_s"] is not None]
    if not done:
        return []
    longest = max(c["duration_s"] for c in done) or 1.0
    step = width / max(len(done), 1)
    bars = []
    for n, cycle in enumerate(done):
        h = max(1.0, cycle["duration_s"] / longest * (height - 4))
        bars.append(
            {
                "x": round(n * step + 1, 2),
                "y": round(height - h, 2),
                "w": round(max(step - 2, 1), 2),
                "h": round(h, 2),
                "outcome": cycle["outcome"],
                "title": f"cycle {cycle['cycle_number']}: {cycle['outcome']} "
                f"in {cycle['duration_s']:.2f}s",
            }
        )
    return bars
