"""The offline provider: a deterministic engine that answers every role like a model would.

It reads the JSON payload of the same prompt a model gets, finds real opportunities with
``ast`` (:mod:`hephaestus.llm.opportunities`) and answers with the JSON text a model would
return, which then goes through the same parsing and validation as model output. Same
prompts and same seed, same answers; no network.
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from typing import Any

from hephaestus.llm.base import Completion, LLMError, Message, Role
from hephaestus.llm.jsontext import InvalidModelOutput, extract_json
from hephaestus.llm.opportunities import Opportunity, find_opportunities
from hephaestus.llm.schema import AnswerSchema

OFFLINE_MODEL = "hephaestus-offline"


class OfflineProvider:
    """Answers brain, architect, code_reviewer and maestro prompts without a model."""

    name = "offline"
    server_address: str | None = None
    server_port: int | None = None

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._answer: dict[Role, Callable[[dict[str, Any]], dict[str, Any]]] = {
            Role.BRAIN: self._objective,
            Role.ARCHITECT: self._plan,
            Role.CODE_REVIEWER: self._review,
            Role.MAESTRO: self._strategy,
        }

    def chat(
        self,
        role: Role,
        model: str,
        messages: Sequence[Message],
        timeout: float | None = None,
        schema: AnswerSchema[Any] | None = None,
    ) -> Completion:
        """Answer the last user message's JSON payload for ``role`` (instantly; no timeout).

        The answers have the shape of each role's schema by construction, so ``schema``
        is not needed.
        """
        prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
        try:
            payload = extract_json(prompt)
        except InvalidModelOutput:
            raise LLMError(
                "the offline provider needs the JSON payload of an agent prompt",
                error_type="invalid_request",
            ) from None
        text = json.dumps(self._answer[role](payload), indent=1)
        size = sum(len(m.content) for m in messages)
        return Completion(
            text=text,
            provider=self.name,
            request_model=model,
            response_model=OFFLINE_MODEL,
            input_tokens=max(1, size // 4),
            output_tokens=max(1, len(text) // 4),
            finish_reason="stop",
        )

    def close(self) -> None:
        """Nothing to release."""

    # brain -------------------------------------------------------------------------------
    def _objective(self, payload: dict[str, Any]) -> dict[str, Any]:
        blocked = set(payload.get("blocked_objectives") or [])
        candidates = [
            o
            for path, text in sorted(_not_tests(payload, "sources").items())
            for o in find_opportunities(path, text)
            if o.objective not in blocked
        ]
        if not candidates:
            return {"objective": None, "rationale": "no mechanical improvement left to make"}
        digest = hashlib.sha256("\n".join(o.key for o in candidates).encode()).hexdigest()
        chosen = random.Random(f"{self.seed}:{digest}").choice(candidates)
        return {
            "objective": chosen.objective,
            "kind": chosen.kind,
            "file_path": chosen.file_path,
            "symbol": chosen.symbol,
            "rationale": f"{len(candidates)} mechanical improvements found; chose one",
        }

    # architect ---------------------------------------------------------------------------
    def _plan(self, payload: dict[str, Any]) -> dict[str, Any]:
        objective = payload.get("objective") or {}
        match = _match(objective, _not_tests(payload, "files"))
        if match is None:
            return {
                "analysis": "the offline provider found no mechanical change for "
                f"{objective.get('objective')!r}",
                "patches_to_apply": [],
            }
        return {
            "analysis": f"{match.kind} at {match.file_path}:{match.line}",
            "patches_to_apply": match.patches,
        }

    # code reviewer -----------------------------------------------------------------------
    def _review(self, payload: dict[str, Any]) -> dict[str, Any]:
        files: dict[str, str] = payload.get("files") or {}
        for patch in (payload.get("plan") or {}).get("patches_to_apply") or []:
            problem = _review_patch(patch, files)
            if problem:
                return {"approved": False, "feedback": problem}
        return {"approved": True, "feedback": "the change is small, local and keeps behaviour"}

    # maestro -----------------------------------------------------------------------------
    def _strategy(self, payload: dict[str, Any]) -> dict[str, Any]:
        strategies: dict[str, list[str]] = payload.get("strategies") or {}
        wanted = ["pytest", "syntax"] if payload.get("has_tests") else ["syntax"]
        for name, steps in strategies.items():
            if steps and set(wanted) <= set(steps) and set(steps) <= set(wanted):
                return {"strategy": name, "rationale": f"validate with {', '.join(steps)}"}
        default = payload.get("default_strategy")
        return {"strategy": default, "rationale": "the configured default"}


def _not_tests(payload: dict[str, Any], key: str) -> dict[str, str]:
    """The files under ``key`` that the prompt's manifest does not mark as tests."""
    listed = (payload.get("manifest") or {}).get("files") or []
    tests = {f.get("path") for f in listed if isinstance(f, dict) and f.get("test")}
    return {path: text for path, text in (payload.get(key) or {}).items() if path not in tests}


def _match(objective: dict[str, Any], files: dict[str, str]) -> Opportunity | None:
    """The opportunity the objective names, or one whose file and kind its free text mentions."""
    found = [o for path, text in sorted(files.items()) for o in find_opportunities(path, text)]
    for opp in found:
        if (opp.kind, opp.file_path, opp.symbol) == (
            objective.get("kind"),
            objective.get("file_path"),
            objective.get("symbol"),
        ):
            return opp
    text = str(objective.get("objective") or "").lower()
    for opp in found:
        if opp.file_path.lower() in text and opp.kind.split("_")[-1] in text.replace(" ", "_"):
            return opp
    return None


def _review_patch(patch: dict[str, Any], files: dict[str, str]) -> str | None:
    path, source = patch.get("file_path", ""), files.get(patch.get("file_path", ""))
    operation = patch.get("operation")
    if source is None:
        return None if operation == "CREATE_FILE" else f"{path} was not shown to the reviewer"
    block = patch.get("block_to_replace") or patch.get("block_to_delete")
    if block is not None and source.count(block) != 1:
        return f"the block to change in {path} does not occur exactly once"
    if block is not None and path.endswith(".py"):
        try:
            ast.parse(
                source.replace(block, patch.get("content", "") if operation == "REPLACE" else "", 1)
            )
        except SyntaxError as exc:
            return f"the change would not parse: {path}:{exc.lineno}: {exc.msg}"
    return None
