"""The server's own words from an HTTP error body: short, on one line, with secrets masked.

"HTTP 400" alone does not say that the prompt overflowed the model's context or that the
server does not know ``response_format``; the body does. Only the message is kept — never
a header — at most 300 characters, with the API key and bearer tokens masked.
"""

from __future__ import annotations

import json
import re
from typing import Any

_MAX_CHARS = 300
_MAX_JSON_BYTES = 64 * 1024
_MAX_BRACKETS = 256
_BEARER = re.compile(r"(?i)bearer\s+\S+")
_KEY_LIKE = re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-]{8,}")
_SPACE = re.compile(r"\s+")


def server_message(body: bytes, secret: str = "") -> str:
    """The error message in ``body`` (OpenAI, FastAPI or plain-text style), or ``""``."""
    text = _message(body)
    if secret:
        text = text.replace(secret, "****")
    text = _KEY_LIKE.sub("****", _BEARER.sub("Bearer ****", text))
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"


def _message(body: bytes) -> str:
    # an error message is small and flat: anything else is read as text, never decoded deeply
    flat = body.count(b"[") + body.count(b"{") <= _MAX_BRACKETS
    if len(body) <= _MAX_JSON_BYTES and flat:
        try:
            return _from_json(json.loads(body))
        except ValueError:
            pass
    return body[: _MAX_CHARS * 4].decode("utf-8", "replace")


def _from_json(data: Any) -> str:
    """The message of an OpenAI (``error``), FastAPI (``detail``) or plain error object."""
    if isinstance(data, dict):
        for key in ("error", "detail", "message"):
            if key in data:
                return _from_json(data[key]) if key == "error" else _text(data[key])
        return json.dumps(data, ensure_ascii=False)
    return _text(data)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "message" in value:
        return _text(value["message"])
    if isinstance(value, list) and all(isinstance(v, dict) and "msg" in v for v in value):
        # FastAPI/pydantic validation errors: [{"loc": [...], "msg": "..."}]
        return "; ".join(
            ".".join(str(part) for part in v.get("loc") or []) + f": {v['msg']}" for v in value
        )
    return json.dumps(value, ensure_ascii=False)
