"""``/metrics`` rendering, coalesced: concurrent scrapes share renders, never stale ones.

Rendering the registry holds the GIL for milliseconds; two hundred scrapes at once would
render two hundred times. Instead a request waits for the next render that *starts after
it arrived* and shares its result, so every answer reflects the registry at or after the
request, while a burst costs about two renders.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from hephaestus.telemetry.encoding import fast_encoder

T = TypeVar("T")


@dataclass
class _Flight(Generic[T]):
    started: int = 0
    finished: int = 0
    running: bool = False
    result: T | None = None


@dataclass
class Coalescer(Generic[T]):
    """Calls ``produce(key)`` once for every wave of concurrent callers with that key."""

    produce: Callable[[str], T]
    _flights: dict[str, _Flight[T]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, key: str) -> T:
        """A result produced after this call began."""
        with self._changed:
            flight = self._flights.setdefault(key, _Flight())
            wanted = flight.started + 1  # the first render to start after now
            while flight.finished < wanted:
                if flight.running:
                    self._changed.wait()
                    continue
                flight.started += 1
                flight.running = True
                generation = flight.started
                self._changed.release()
                try:
                    result = self.produce(key)
                finally:
                    self._changed.acquire()
                    flight.running = False
                    self._changed.notify_all()
                flight.result, flight.finished = result, generation
            assert flight.result is not None
            return flight.result


class MetricsRenderer:
    """Renders one registry for ``/metrics``: Prometheus text, or OpenMetrics when asked."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        # content type -> encoder: a handful of formats, each encoder remembering its series
        self._encoders: dict[str, Callable[..., bytes]] = {}
        self._renders: Coalescer[tuple[bytes, str]] = Coalescer(self._render)

    def _render(self, content_type: str) -> tuple[bytes, str]:
        return self._encoders[content_type](self.registry), content_type

    def __call__(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format ``accept`` prefers (OpenMetrics carries exemplars)."""
        encoder, content_type = choose_encoder(accept or "")
        if content_type not in self._encoders:
            self._encoders[content_type] = fast_encoder(encoder) or encoder
        return self._renders(content_type)
