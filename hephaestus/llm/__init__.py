"""Models behind one interface: the OpenAI-compatible client, the offline engine, routing.

:class:`RoleModels` sends each agent :class:`Role` to its models (primary, then fallbacks)
with retries and circuit breakers; a :class:`Provider` makes one request to one model, and
:class:`ChaosProvider` wraps one to inject faults for drills.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hephaestus._exports import lazy_exports

if TYPE_CHECKING:
    from hephaestus.llm.base import (
        Completion,
        InvalidAnswer,
        LLMError,
        Message,
        Provider,
        Role,
        llm_error,
    )
    from hephaestus.llm.chaos import ChaosProvider
    from hephaestus.llm.client import RoleModels, Usage, usage_scope
    from hephaestus.llm.offline import OfflineProvider
    from hephaestus.llm.openai import OpenAICompatibleProvider
    from hephaestus.llm.schema import AnswerSchema

__all__ = [
    "AnswerSchema",
    "ChaosProvider",
    "Completion",
    "InvalidAnswer",
    "LLMError",
    "Message",
    "OfflineProvider",
    "OpenAICompatibleProvider",
    "Provider",
    "Role",
    "RoleModels",
    "Usage",
    "llm_error",
    "usage_scope",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Completion": "base",
        "InvalidAnswer": "base",
        "LLMError": "base",
        "Message": "base",
        "Provider": "base",
        "Role": "base",
        "llm_error": "base",
        "ChaosProvider": "chaos",
        "RoleModels": "client",
        "Usage": "client",
        "usage_scope": "client",
        "OfflineProvider": "offline",
        "OpenAICompatibleProvider": "openai",
        "AnswerSchema": "schema",
    },
)
