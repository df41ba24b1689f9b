"""Conventional-commit subjects built from an objective: one line, no markdown, <= 72 chars."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from hephaestus.agent.models import Objective

MAX_SUBJECT = 72
_TYPES = {
    "module_docstring": "docs",
    "function_docstring": "docs",
    "unused_import": "refactor",
    "none_comparison": "fix",
    "bare_except": "fix",
}
_KEYWORDS = (
    ("docstring", "docs"),
    ("document", "docs"),
    ("test", "test"),
    ("fix", "fix"),
    ("bug", "fix"),
    ("refactor", "refactor"),
    ("remove", "refactor"),
    ("perf", "perf"),
    ("speed", "perf"),
)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[`*#>|~]|(?<!\w)_{1,2}|_{1,2}(?!\w)|<[^>]*>")


def commit_message(objective: Objective) -> str:
    """``type(scope): description`` for the objective, sanitised and at most 72 characters."""
    kind = _TYPES.get(objective.kind) or _guess_type(objective.text)
    scope = _scope(objective.file_path)
    prefix = f"{kind}({scope}): " if scope else f"{kind}: "
    text = objective.text
    if objective.file_path:  # the scope already names the file
        text = re.sub(
            rf"\s+(in|from|at|of)\s+`?{re.escape(objective.file_path)}(:\d+)?`?", "", text
        )
    description = sanitise(text).rstrip(" .:;,") or "improve code"
    if len(description) > 1 and description[1].islower():
        description = description[0].lower() + description[1:]
    return _truncate(prefix + description, MAX_SUBJECT)


def sanitise(text: str) -> str:
    """First non-empty line, markdown links reduced to their text, markup and extra spaces gone."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = _LINK.sub(r"\1", line)
    line = _MARKUP.sub("", line)
    return " ".join(line.replace("\t", " ").split()).strip(" -:")


def _guess_type(text: str) -> str:
    lowered = text.lower()
    return next((kind for word, kind in _KEYWORDS if re.search(rf"\b{word}", lowered)), "chore")


def _scope(file_path: str | None) -> str:
    if not file_path:
        return ""
    stem = PurePosixPath(file_path).stem
    return re.sub(r"[^a-z0-9_-]", "", stem.lower())[:20]


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]
    return (cut if len(cut) > limit // 2 else text[:limit]).rstrip(" ,;:-.")
