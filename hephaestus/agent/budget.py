"""Fit a prompt into the model's context window, leaving room for the answer.

The budget of a role's prompt is the smallest context window among its models
(``llm.context_tokens``, ``llm.context_tokens_by_model``) less ``llm.max_tokens`` and a
margin of a tenth of the window for the chat template and the estimate's error. Tokens
are estimated as characters divided by :data:`CHARS_PER_TOKEN`: no tokenizer is needed,
and one model's tokenizer would be wrong for the next. Agent prompts (JSON-escaped Python)
measured 2.9 to 3.2 characters a token with SmolLM2's tokenizer; an estimate that comes
out low overflows the window, hence the margin.

A prompt over budget loses its least relevant files first (each role ranks its own), then
the tail of the manifest's file list; the stage's span says what went
(``hephaestus.prompt.trimmed_files``). A prompt that does not fit even then fails the
stage as ``llm_error`` with ``error.type=context_overflow``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hephaestus import telemetry
from hephaestus.agent.models import CycleError, Reason
from hephaestus.agent.prompts import build_messages
from hephaestus.llm.base import Message, Role
from hephaestus.llm.client import RoleModels

CHARS_PER_TOKEN = 3.0
_LOG = logging.getLogger("hephaestus.prompt")


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` is likely to take: characters / :data:`CHARS_PER_TOKEN`, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def prompt_budget(models: RoleModels, role: Role) -> int | None:
    """Tokens ``role``'s prompt may take; ``None`` when its models have no known window."""
    window = models.context_window(role)
    if window is None:
        return None
    margin = max(64, window // 10)
    return window - models.max_tokens - margin


@dataclass
class _Fitting:
    """A payload being trimmed, and what was taken out of it."""

    instructions: str
    payload: dict[str, Any]
    files_key: str | None
    trimmed_files: list[str]
    trimmed_entries: int = 0

    def messages(self) -> list[Message]:
        return build_messages(self.instructions, self.payload)

    def tokens(self) -> int:
        return messages_tokens(self.messages())


def messages_tokens(messages: Sequence[Message]) -> int:
    """The estimated tokens of ``messages``' contents."""
    return sum(estimate_tokens(m.content) for m in messages)


def fit_messages(
    models: RoleModels,
    role: Role,
    instructions: str,
    payload: dict[str, Any],
    *,
    files_key: str | None = None,
    ranked: Sequence[str] = (),
    required: Sequence[str] = (),
) -> list[Message]:
    """The messages of ``payload``, trimmed to ``role``'s budget; the span says what went.

    ``payload[files_key]`` maps paths to file text; ``ranked`` orders them from most to
    least relevant (files it does not name rank last); ``required`` files are never
    trimmed. ``payload`` is not modified.
    """
    files = dict(payload.get(files_key) or {}) if files_key else {}
    order = [p for p in ranked if p in files] + [p for p in files if p not in ranked]
    order = [p for p in order if p not in required]
    fitting = _Fitting(
        instructions, {**payload, **({files_key: files} if files_key else {})}, files_key, []
    )
    budget = prompt_budget(models, role)
    messages = fitting.messages()  # built once when nothing needs trimming, as is usual
    tokens = messages_tokens(messages)
    if budget is not None and tokens > budget:
        tokens = _trim(fitting, order, budget, tokens)
        messages = fitting.messages()
    _report(role, fitting, tokens, budget)
    if budget is not None and tokens > budget:
        kept = f" (kept in full: {', '.join(required)})" if required else ""
        raise CycleError(
            Reason.LLM_ERROR,
            f"{role}: the prompt needs ~{tokens} tokens even trimmed{kept}, over the {budget} "
            f"left of the {models.context_window(role)}-token context window after "
            f"llm.max_tokens = {models.max_tokens}; raise llm.context_tokens if the model's "
            "window is larger, or lower llm.max_tokens",
            error_type="context_overflow",
        )
    return messages


def _trim(fitting: _Fitting, order: list[str], budget: int, tokens: int) -> int:
    """Drop the least relevant files, then manifest entries, until the prompt fits."""
    files: dict[str, str] = fitting.payload[fitting.files_key] if fitting.files_key else {}
    while order and tokens > budget:
        path = order.pop()
        tokens -= estimate_tokens(json.dumps({path: files.pop(path)}, ensure_ascii=False))
        fitting.trimmed_files.append(path)
        if tokens <= budget:
            tokens = fitting.tokens()  # the estimate above ignores indentation: recount
    manifest = fitting.payload.get("manifest")
    if tokens > budget and isinstance(manifest, dict) and manifest.get("files"):
        tokens = _trim_manifest(fitting, dict(manifest), budget, tokens)
    return tokens


def _trim_manifest(fitting: _Fitting, manifest: dict[str, Any], budget: int, tokens: int) -> int:
    entries = list(manifest["files"])
    fitting.payload["manifest"] = manifest
    while entries and tokens > budget:
        over = tokens - budget
        cut = max(1, math.ceil(len(entries) * over / max(tokens, 1)))
        del entries[-cut:]
        fitting.trimmed_entries += cut
        manifest |= {"files": entries, "truncated": True}
        tokens = fitting.tokens()
    return tokens


def _report(role: Role, fitting: _Fitting, tokens: int, budget: int | None) -> None:
    attributes: dict[str, Any] = {"hephaestus.prompt.estimated_tokens": tokens}
    if budget is not None:
        attributes["hephaestus.prompt.budget_tokens"] = budget
    if fitting.trimmed_files:
        attributes["hephaestus.prompt.trimmed_files"] = list(fitting.trimmed_files)
    if fitting.trimmed_entries:
        attributes["hephaestus.prompt.trimmed_manifest_entries"] = fitting.trimmed_entries
    telemetry.set_attributes(attributes)
    if fitting.trimmed_files or fitting.trimmed_entries:
        _LOG.info(
            "prompt trimmed to fit the context window",
            extra={
                "role": role.value,
                "trimmed_files": fitting.trimmed_files,
                "trimmed_manifest_entries": fitting.trimmed_entries,
                "estimated_tokens": tokens,
                "budget_tokens": budget,
            },
        )
