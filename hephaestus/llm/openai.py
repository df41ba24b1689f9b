"""The OpenAI-compatible Chat Completions API over httpx (OpenRouter, OpenAI, Ollama, vLLM…).

The API key is read from the environment variable the config names, kept only in the
client's default headers, and never logged, stored or put on a span.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from hephaestus import __version__
from hephaestus.config import ConfigError, LLMConfig
from hephaestus.llm.base import Completion, LLMError, Message, Role, llm_error
from hephaestus.llm.jsontext import lone_surrogate


class OpenAICompatibleProvider:
    """One HTTP request per :meth:`chat`; retries and fallback live in ``llm/client.py``."""

    name = "openai"

    def __init__(
        self,
        config: LLMConfig,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        env = os.environ if env is None else env
        headers = {"User-Agent": f"hephaestus/{__version__}"}
        if config.api_key_env:
            key = env.get(config.api_key_env, "")
            if not key:
                raise ConfigError(
                    f"the openai provider needs an API key in ${config.api_key_env} "
                    f'(llm.api_key_env); export it, or set llm.api_key_env = "" for a '
                    f"server without auth"
                )
            headers["Authorization"] = f"Bearer {key}"
        url = httpx.URL(config.base_url)
        self.server_address: str | None = url.host or None
        self.server_port: int | None = url.port or (443 if url.scheme == "https" else 80)
        self._config = config
        self._client = httpx.Client(
            base_url=config.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(config.request_timeout),
            transport=transport,
        )

    def chat(
        self, role: Role, model: str, messages: Sequence[Message], timeout: float | None = None
    ) -> Completion:
        """POST ``chat/completions`` and return the first choice's text and token usage."""
        body = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": self._config.temperature,
            "max_tokens": self._config.max_tokens,
        }
        limit = httpx.Timeout(
            min(timeout, self._config.request_timeout)
            if timeout is not None
            else self._config.request_timeout
        )
        try:
            response = self._post(body, limit)
        except httpx.TimeoutException as exc:
            raise llm_error(
                f"{model}: request timed out ({type(exc).__name__})", error_type="timeout"
            ) from None
        except httpx.TransportError as exc:
            raise llm_error(
                f"{model}: connection failed ({type(exc).__name__})", error_type="connection_error"
            ) from None
        if response.status_code != 200:
            raise _http_error(model, response)
        return _parse(model, response)

    def _post(self, body: dict[str, object], limit: httpx.Timeout) -> httpx.Response:
        """POST and read the body, refusing one over ``llm.max_response_bytes``."""
        cap = self._config.max_response_bytes
        with self._client.stream("POST", "chat/completions", json=body, timeout=limit) as response:
            return read_capped(response, cap, str(body["model"]))

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()


def read_capped(response: httpx.Response, cap: int, model: str) -> httpx.Response:
    """``response`` read whole into a new response, or an error once it passes ``cap`` bytes."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(model, cap)
    body = bytearray()
    for chunk in response.iter_bytes():  # decoded: a small gzip bomb counts at full size
        body += chunk
        if len(body) > cap:
            raise _too_large(model, cap)
    headers = {
        k: v for k, v in response.headers.items() if k not in ("content-encoding", "content-length")
    }
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )


def _too_large(model: str, cap: int) -> LLMError:
    return LLMError(
        f"{model}: the response is larger than {cap} bytes (llm.max_response_bytes)",
        error_type="response_too_large",
    )


def _http_error(model: str, response: httpx.Response) -> LLMError:
    status = response.status_code
    return llm_error(
        f"{model}: HTTP {status} from {response.request.url.path}",
        error_type=f"http_{status}",
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
    )


def retry_after_seconds(value: str | None) -> float | None:
    """Parse ``Retry-After`` (seconds or an HTTP date) into seconds; ``None`` if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _parse(model: str, response: httpx.Response) -> Completion:
    try:
        data = response.json()
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        raise LLMError(
            f"{model}: the response is not a Chat Completions object", error_type="invalid_response"
        ) from None
    if isinstance(text, str) and lone_surrogate(text):
        raise LLMError(
            f"{model}: the response's text holds a lone surrogate code point",
            error_type="invalid_response",
        )
    usage = data.get("usage") or {}
    return Completion(
        text=text if isinstance(text, str) else "",
        provider="openai",
        request_model=model,
        response_model=str(data.get("model") or model),
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
