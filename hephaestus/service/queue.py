"""Objectives queued through the API, consumed by the service loop before the brain is asked."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass


class QueueFull(Exception):
    """The queue holds ``maxsize`` objectives already."""


class DuplicateCorrelationId(Exception):
    """An objective with this correlation id is already queued."""


@dataclass(frozen=True)
class QueuedObjective:
    """An operator's objective and the correlation id its cycle will carry."""

    objective: str
    correlation_id: str


class ObjectiveQueue:
    """A bounded FIFO shared by the HTTP threads and the service loop; ``wake`` is set on push."""

    def __init__(self, maxsize: int = 100) -> None:
        self.maxsize = maxsize
        self.wake = threading.Event()
        self._items: collections.deque[QueuedObjective] = collections.deque()
        self._lock = threading.Lock()

    def push(self, item: QueuedObjective) -> int:
        """Queue ``item`` and return its 1-based position."""
        with self._lock:
            if len(self._items) >= self.maxsize:
                raise QueueFull(f"{self.maxsize} objectives are already queued")
            if any(q.correlation_id == item.correlation_id for q in self._items):
                raise DuplicateCorrelationId(item.correlation_id)
            self._items.append(item)
            position = len(self._items)
        self.wake.set()
        return position

    def pop(self) -> QueuedObjective | None:
        """The oldest queued objective, or ``None``."""
        with self._lock:
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
