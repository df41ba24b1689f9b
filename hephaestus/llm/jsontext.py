"""Find the JSON object in a model's answer without ever rewriting what the model wrote.

Models wrap JSON in prose or Markdown fences. We decode the first complete JSON object that
starts at some ``{`` in the text, exactly as written: no quote fixing, no escape repair, so
code inside strings reaches the patcher byte for byte. An answer nested deeper than
64 levels, or holding a lone surrogate (text that no file and no UTF-8 stream can
carry, whether raw or escaped in a JSON string), is refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

_DECODER = json.JSONDecoder()
_MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidModelOutput(ValueError):
    """The model's answer holds no usable JSON object."""


def lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point, which UTF-8 cannot encode."""
    return _SURROGATE.search(text) is not None


# a JSON string (to its closing quote, or to the end of an unterminated one), or a bracket
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting of ``text`` outside JSON strings, in one linear pass.

    The regular expression skips whole strings, so a prompt or answer of a megabyte is
    scanned at C speed rather than a character at a time.
    """
    depth = deepest = 0
    for token in _STRING_OR_BRACKET.finditer(text):
        char = text[token.start()]  # not token.group(): that would copy every string
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def _check_answer(text: str) -> None:
    """Raise :class:`InvalidModelOutput` for an answer too deep or with a lone surrogate."""
    if lone_surrogate(text):
        raise InvalidModelOutput("the model's answer holds a lone surrogate code point")
    depth = nesting_depth(text)
    if depth > _MAX_DEPTH:
        raise InvalidModelOutput(
            f"the model's answer is nested {depth} levels deep; at most {_MAX_DEPTH} are allowed"
        )


def _check_strings(value: Any) -> None:
    """Refuse a decoded value with a lone surrogate in any key or string (depth is bounded)."""
    if isinstance(value, str):
        if lone_surrogate(value):
            raise InvalidModelOutput("the model's answer holds an escaped lone surrogate")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def extract_json(text: str) -> dict[str, Any]:
    """Return the first JSON object in ``text``.

    Tries the whole text first, then every ``{`` from left to right (which covers fenced
    blocks and leading prose). Raises :class:`InvalidModelOutput` when none decodes, when
    the text is nested too deep, or when it holds a lone surrogate.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidModelOutput("the model returned an empty answer")
    _check_answer(text)
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        pass
    except RecursionError:  # deeper than the scan saw (unbalanced quotes in prose)
        raise InvalidModelOutput("the model's answer is nested too deep to decode") from None
    else:
        if isinstance(value, dict):
            _check_strings(value)
            return value
    start = stripped.find("{")
    while start != -1:
        try:
            value, _end = _DECODER.raw_decode(stripped, start)
        except json.JSONDecodeError:
            start = stripped.find("{", start + 1)
            continue
        except RecursionError:
            raise InvalidModelOutput("the model's answer is nested too deep to decode") from None
        if isinstance(value, dict):
            _check_strings(value)
            return value
        start = stripped.find("{", start + 1)  # pragma: no cover - raw_decode at '{' yields a dict
    preview = stripped[:80].replace("\n", " ")
    raise InvalidModelOutput(f"no JSON object found in the model's answer: {preview!r}")
