"""The cycle context every signal carries: correlation id, stage and extra fields.

Kept in contextvars so logs, spans and metrics read the same values without passing them
around; the cycle runner sets the correlation id through :func:`cycle_context`, and each
stage's span sets ``stage_var`` for the stage it wraps.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hephaestus_correlation_id", default=None
)
stage_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hephaestus_stage", default=None
)


@contextlib.contextmanager
def cycle_context(correlation_id: str) -> Iterator[None]:
    """Set the correlation id for everything inside the block."""
    token = correlation_id_var.set(correlation_id)
    try:
        yield
    finally:
        correlation_id_var.reset(token)
