"""The OpenAI-compatible Chat Completions API over httpx (OpenRouter, OpenAI, Ollama, vLLM…).

The API key is read from the environment variable the config names, kept only in the
client's default headers, and never logged, stored or put on a span; a server's error
message is shown with the key masked.

Structured outputs: each request carries the answer's JSON schema as ``response_format``
in the configured mode. A model whose server rejects that mode (HTTP 400 or 422 naming
``response_format``; llama-cpp-python answers 500) is asked again at once in the next mode
— ``json_schema`` → ``json_object`` (with the schema, which llama.cpp and others enforce) →
``off`` — and keeps that mode for the rest of the process; each step is a span event and a
log line.

A local server (llama.cpp, Ollama) keeps computing a request after the client gave up on
it. So a timeout against one is not retried, and the next request to it waits until it
has had another ``llm.request_timeout`` to finish (or fails with ``endpoint_busy`` when the
stage's deadline does not allow that wait), instead of queueing behind the abandoned one.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from hephaestus import __version__, telemetry
from hephaestus.config import STRUCTURED_OUTPUT_MODES, ConfigError, LLMConfig
from hephaestus.llm.base import Completion, LLMError, Message, Role, llm_error
from hephaestus.llm.errorbody import server_message
from hephaestus.llm.jsontext import lone_surrogate
from hephaestus.llm.schema import AnswerSchema
from hephaestus.resilience.timeouts import current_deadline

_LOG = logging.getLogger("hephaestus.llm")
_FORMAT_REJECTED_STATUSES = (400, 422, 500)  # llama-cpp-python answers 500
_FORMAT_WORDS = ("response_format", "json_schema", "json_object")


class OpenAICompatibleProvider:
    """One HTTP request per :meth:`chat`; retries and fallback live in ``llm/client.py``."""

    name = "openai"

    def __init__(
        self,
        config: LLMConfig,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        env = os.environ if env is None else env
        headers = {"User-Agent": f"hephaestus/{__version__}"}
        self._secret = ""
        if config.api_key_env:
            self._secret = env.get(config.api_key_env, "")
            if not self._secret:
                raise ConfigError(
                    f"the openai provider needs an API key in ${config.api_key_env} "
                    f'(llm.api_key_env); export it, or set llm.api_key_env = "" for a '
                    f"server without auth"
                )
            headers["Authorization"] = f"Bearer {self._secret}"
        url = httpx.URL(config.base_url)
        self.server_address: str | None = url.host or None
        self.server_port: int | None = url.port or (443 if url.scheme == "https" else 80)
        self.local = config.local_server == "yes" or (
            config.local_server == "auto" and _is_loopback(url.host)
        )
        self._config = config
        self._modes: dict[str, str] = {}
        self._busy_until = float("-inf")
        self._clock, self._sleep = clock, sleep
        self._client = httpx.Client(
            base_url=config.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(config.request_timeout),
            transport=transport,
        )

    def structured_output(self, model: str) -> str:
        """The structured-output mode ``model`` is asked in now (after any fallback)."""
        return self._modes.get(model, self._config.structured_output)

    def chat(
        self,
        role: Role,
        model: str,
        messages: Sequence[Message],
        timeout: float | None = None,
        schema: AnswerSchema[Any] | None = None,
    ) -> Completion:
        """POST ``chat/completions`` and return the first choice's text and token usage."""
        limit = self._config.request_timeout
        limit = limit if timeout is None else min(timeout, limit)
        if self._wait_while_busy(model):
            limit = min(limit, current_deadline().remaining())
        mode = self.structured_output(model) if schema is not None else "off"
        while True:
            started = self._clock()
            response = self._post(model, self._body(model, messages, schema, mode), limit)
            if response.status_code == 200:
                return _parse(model, response, mode)
            error = _http_error(model, response, self._secret)
            fallback = _next_mode(mode) if _rejects_format(response) else None
            limit -= self._clock() - started
            if fallback is None or limit <= 0:
                raise error
            self._fall_back(model, mode, fallback, error)
            mode = fallback

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def _body(
        self,
        model: str,
        messages: Sequence[Message],
        schema: AnswerSchema[Any] | None,
        mode: str,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": self._config.temperature,
            "max_tokens": self._config.max_tokens,
        }
        if schema is not None and mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.name,
                    "strict": True,
                    "schema": schema.json_schema(),
                },
            }
        elif schema is not None and mode == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema.json_schema()}
        return body

    def _post(self, model: str, body: dict[str, Any], limit: float) -> httpx.Response:
        """POST and read the body, refusing one over ``llm.max_response_bytes``."""
        cap = self._config.max_response_bytes
        try:
            with self._client.stream(
                "POST", "chat/completions", json=body, timeout=httpx.Timeout(limit)
            ) as response:
                return _read_capped(response, cap, model)
        except httpx.TimeoutException as exc:
            raise self._timeout(model, limit, exc) from None
        except httpx.TransportError as exc:
            raise llm_error(
                f"{model}: connection failed ({type(exc).__name__})", error_type="connection_error"
            ) from None

    def _timeout(self, model: str, limit: float, exc: Exception) -> LLMError:
        message = f"{model}: request timed out after {limit:.3g}s ({type(exc).__name__})"
        if not self.local:
            return llm_error(message, error_type="timeout")
        self._busy_until = self._clock() + self._config.request_timeout
        error = llm_error(
            f"{message}; {self.server_address}:{self.server_port} is a local server that is "
            "still computing it, so it is not retried and the next request waits "
            f"{self._config.request_timeout:g}s (llm.request_timeout) for it to finish",
            error_type="timeout",
        )
        error.retryable = False
        return error

    def _wait_while_busy(self, model: str) -> float:
        """Wait for a local server still computing a request that timed out; seconds waited.

        The wait comes on top of the request's own timeout and must end before the stage's
        deadline, or the call fails at once with ``endpoint_busy``.
        """
        wait = self._busy_until - self._clock()
        if wait <= 0:
            return 0.0
        deadline = current_deadline()
        if wait >= deadline.remaining():
            raise LLMError(
                f"{model}: the local server {self.server_address}:{self.server_port} is still "
                f"computing a request that timed out; it gets {wait:.0f}s more to finish, "
                f"longer than the {deadline.remaining():.0f}s left before the {deadline.what}",
                error_type="endpoint_busy",
            )
        telemetry.add_event("llm.endpoint_busy_wait", {"hephaestus.wait_seconds": wait})
        _LOG.warning(
            "waiting for a local model server to finish a request that timed out",
            extra={"model": model, "wait_s": round(wait, 3)},
        )
        self._sleep(wait)
        return wait

    def _fall_back(self, model: str, mode: str, fallback: str, error: LLMError) -> None:
        self._modes[model] = fallback
        reason = str(error)
        telemetry.add_event(
            "structured_output.fallback",
            {
                "hephaestus.structured_output.from": mode,
                "hephaestus.structured_output.to": fallback,
                "error.type": error.error_type,
                "hephaestus.error.message": reason,
            },
        )
        _LOG.warning(
            "the model server rejected the structured-output mode; asking again without it",
            extra={"model": model, "from": mode, "to": fallback, "error": reason},
        )


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost`` or a loopback address)."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _next_mode(mode: str) -> str | None:
    index = STRUCTURED_OUTPUT_MODES.index(mode)
    return STRUCTURED_OUTPUT_MODES[index + 1] if index + 1 < len(STRUCTURED_OUTPUT_MODES) else None


def _rejects_format(response: httpx.Response) -> bool:
    if response.status_code not in _FORMAT_REJECTED_STATUSES:
        return False
    text = response.content[:8192].decode("utf-8", "replace").lower()
    return any(word in text for word in _FORMAT_WORDS)


def _read_capped(response: httpx.Response, cap: int, model: str) -> httpx.Response:
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


def _http_error(model: str, response: httpx.Response, secret: str) -> LLMError:
    status = response.status_code
    detail = server_message(response.content, secret)
    return llm_error(
        f"{model}: HTTP {status} from {response.request.url.path}"
        + (f": {detail}" if detail else ""),
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


def _parse(model: str, response: httpx.Response, mode: str) -> Completion:
    try:
        data = response.json()
        choice = data["choices"][0]
        text = choice["message"]["content"]
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
    finish_reason = choice.get("finish_reason")
    return Completion(
        text=text if isinstance(text, str) else "",
        provider="openai",
        request_model=model,
        response_model=str(data.get("model") or model),
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        finish_reason=finish_reason[:40] if isinstance(finish_reason, str) else None,
        response_format=mode,
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
