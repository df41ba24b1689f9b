"""Shared prompt plumbing: instructions + one JSON payload in, one checked answer out."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from hephaestus.agent.models import CycleError, Reason
from hephaestus.llm.base import InvalidAnswer, LLMError, Message, Role
from hephaestus.llm.client import RoleModels
from hephaestus.llm.schema import AnswerSchema

T = TypeVar("T")


def build_messages(instructions: str, payload: dict[str, Any]) -> list[Message]:
    """A system message with the role's instructions and a user message holding the payload."""
    user = (
        "Input follows as JSON. Reply with one JSON object only.\n\n```json\n"
        + json.dumps(payload, indent=1, ensure_ascii=False)
        + "\n```"
    )
    return [Message("system", instructions.strip()), Message("user", user)]


def ask_json(models: RoleModels, role: Role, messages: list[Message], schema: AnswerSchema[T]) -> T:
    """Ask ``role``'s models for an answer that fits ``schema``.

    A failed call ends the cycle with ``llm_error`` (``timeout`` when the stage's deadline
    ran out); an answer without JSON, or with a field missing or mistyped, with
    ``invalid_plan`` and a detail that names the field.
    """
    try:
        return models.ask(role, messages, schema)
    except LLMError as exc:
        reason = Reason.TIMEOUT if exc.error_type == "deadline" else Reason.LLM_ERROR
        raise CycleError(reason, f"{role}: {exc}", error_type=exc.error_type) from None
    except InvalidAnswer as exc:
        raise CycleError(Reason.INVALID_PLAN, f"{role}: {exc}", error_type=exc.error_type) from None
