"""Fault injection around any provider: errors (HTTP 500 or timeouts), latency and hangs.

Off unless a rate or latency is configured (``[chaos]`` or ``HEPHAESTUS_CHAOS_*``). Faults are
drawn from a seeded generator, so a run can be repeated; they raise the same errors a real
endpoint would, so retries, breakers, metrics and alerts react exactly as in production.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from hephaestus.config import ChaosConfig
from hephaestus.llm.base import Completion, Message, Provider, Role, llm_error
from hephaestus.llm.schema import AnswerSchema


class ChaosProvider:
    """Wraps ``inner``; injects the configured faults before the real call."""

    def __init__(
        self, inner: Provider, config: ChaosConfig, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.inner = inner
        self.config = config
        self.name = inner.name
        self.server_address = inner.server_address
        self.server_port = inner.server_port
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()
        self._sleep = sleep

    def chat(
        self,
        role: Role,
        model: str,
        messages: Sequence[Message],
        timeout: float | None = None,
        schema: AnswerSchema[Any] | None = None,
    ) -> Completion:
        """Maybe fail, hang or lag; otherwise answer through the real provider."""
        with self._lock:
            hang = self._random.random() < self.config.llm_hang_rate
            error = self._random.random() < self.config.llm_error_rate
            as_timeout = self._random.random() < self.config.llm_timeout_share
        if self.config.llm_latency:
            self._sleep(self.config.llm_latency)
        if hang:
            self._sleep(timeout if timeout is not None else 30.0)
            raise llm_error(
                f"{model}: injected hang until the request timed out", error_type="timeout"
            )
        if error and as_timeout:
            raise llm_error(f"{model}: injected request timeout", error_type="timeout")
        if error:
            raise llm_error(f"{model}: injected HTTP 500", error_type="http_500")
        return self.inner.chat(role, model, messages, timeout=timeout, schema=schema)

    def close(self) -> None:
        """Close the real provider."""
        self.inner.close()
