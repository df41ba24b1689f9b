"""Find the JSON object in a model's answer without ever rewriting what the model wrote.

Models wrap JSON in prose or Markdown fences. We decode the first complete JSON object that
starts at some ``{`` in the text, exactly as written: no quote fixing, no escape repair, so
code inside strings reaches the patcher byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

_DECODER = json.JSONDecoder()


class InvalidModelOutput(ValueError):
    """The model's answer holds no usable JSON object."""


def extract_json(text: str) -> dict[str, Any]:
    """Return the first JSON object in ``text``.

    Tries the whole text first, then every ``{`` from left to right (which covers fenced
    blocks and leading prose). Raises :class:`InvalidModelOutput` when none decodes.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidModelOutput("the model returned an empty answer")
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        pass
    else:
        if isinstance(value, dict):
            return value
    start = stripped.find("{")
    while start != -1:
        try:
            value, _end = _DECODER.raw_decode(stripped, start)
        except json.JSONDecodeError:
            start = stripped.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = stripped.find("{", start + 1)  # pragma: no cover - raw_decode at '{' yields a dict
    preview = stripped[:80].replace("\n", " ")
    raise InvalidModelOutput(f"no JSON object found in the model's answer: {preview!r}")
