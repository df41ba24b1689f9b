"""Shared prompt plumbing: instructions + one JSON payload in, one JSON object out."""

from __future__ import annotations

import json
from typing import Any

from hephaestus.agent.models import CycleError, Reason
from hephaestus.llm.base import LLMError, Message, Role
from hephaestus.llm.client import RoleModels
from hephaestus.llm.jsontext import InvalidModelOutput, extract_json


def build_messages(instructions: str, payload: dict[str, Any]) -> list[Message]:
    """A system message with the role's instructions and a user message holding the payload."""
    user = (
        "Input follows as JSON. Reply with one JSON object only.\n\n```json\n"
        + json.dumps(payload, indent=1, ensure_ascii=False)
        + "\n```"
    )
    return [Message("system", instructions.strip()), Message("user", user)]


def ask_json(models: RoleModels, role: Role, messages: list[Message]) -> dict[str, Any]:
    """Ask ``role``'s models and decode the JSON object of the answer.

    A failed call ends the cycle with ``llm_error`` (``timeout`` when the stage's deadline
    ran out); an answer without JSON with ``invalid_plan``.
    """
    try:
        completion = models.complete(role, messages)
    except LLMError as exc:
        reason = Reason.TIMEOUT if exc.error_type == "deadline" else Reason.LLM_ERROR
        raise CycleError(reason, f"{role}: {exc}", error_type=exc.error_type) from None
    try:
        return extract_json(completion.text)
    except InvalidModelOutput as exc:
        raise CycleError(Reason.INVALID_PLAN, f"{role}: {exc}", error_type="invalid_json") from None
