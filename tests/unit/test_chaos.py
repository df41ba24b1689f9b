"""Fault injection: seeded errors, latency and hangs around any provider.

A fake ``sleep`` records the waits, so latency and hangs cost no time.
"""

from __future__ import annotations

import pytest

from hephaestus.agent.answers import REVIEW
from hephaestus.config import ChaosConfig
from hephaestus.llm.base import (
    Completion,
    LLMError,
    LLMRateLimited,
    LLMServerError,
    LLMTimeout,
    Message,
    Role,
    llm_error,
)
from hephaestus.llm.chaos import ChaosProvider
from hephaestus.resilience.retry import transient


class EchoProvider:
    """A provider that always answers; remembers the timeouts and schemas it was given."""

    name = "echo"
    server_address = "echo.invalid"
    server_port = 4242

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []
        self.schemas: list[object] = []
        self.closed = False

    def chat(
        self, role: Role, model: str, messages, timeout: float | None = None, schema=None
    ) -> Completion:
        self.timeouts.append(timeout)
        self.schemas.append(schema)
        return Completion(
            text=f"{role}:{model}",
            provider=self.name,
            request_model=model,
            response_model=model,
            input_tokens=3,
            output_tokens=2,
        )

    def close(self) -> None:
        self.closed = True


MESSAGES = [Message("user", "hello")]


def chaos(config: ChaosConfig) -> tuple[ChaosProvider, EchoProvider, list[float]]:
    inner, sleeps = EchoProvider(), []
    return ChaosProvider(inner, config, sleep=sleeps.append), inner, sleeps


def faults(config: ChaosConfig, calls: int = 60) -> list[str]:
    provider, _, _ = chaos(config)
    outcomes = []
    for _ in range(calls):
        try:
            provider.chat(Role.BRAIN, "m", MESSAGES, timeout=1.0)
            outcomes.append("ok")
        except LLMError as exc:
            outcomes.append(exc.error_type)
    return outcomes


def test_the_same_seed_injects_the_same_faults():
    config = ChaosConfig(seed=42, llm_error_rate=0.5)

    sequence = faults(config)
    assert sequence == faults(config)
    assert {"ok", "timeout", "http_500"} <= set(sequence)
    assert faults(ChaosConfig(seed=43, llm_error_rate=0.5)) != sequence


def test_an_error_rate_of_zero_never_fails():
    assert set(faults(ChaosConfig(seed=1, llm_error_rate=0.0, llm_latency=0.001))) == {"ok"}


@pytest.mark.parametrize(
    ("share", "kind", "error_type"),
    [
        (1.0, LLMTimeout, "timeout"),
        (0.0, LLMServerError, "http_500"),
    ],
)
def test_an_error_rate_of_one_always_fails_as_a_retryable_error(share, kind, error_type):
    provider, inner, _ = chaos(ChaosConfig(seed=5, llm_error_rate=1.0, llm_timeout_share=share))

    for _ in range(20):
        with pytest.raises(LLMError) as info:
            provider.chat(Role.ARCHITECT, "model-a", MESSAGES)
        assert type(info.value) is kind  # a subclass, so stamina's error_type label says what
        assert info.value.error_type == error_type and info.value.retryable
        assert transient(60.0)(info.value) is True
    assert inner.timeouts == []  # the real provider was never asked


def test_added_latency_sleeps_before_every_call_and_then_answers():
    provider, inner, sleeps = chaos(ChaosConfig(llm_latency=0.25))

    answers = [provider.chat(Role.MAESTRO, "m", MESSAGES, timeout=7.0) for _ in range(3)]
    assert sleeps == [0.25] * 3
    assert [a.text for a in answers] == ["maestro:m"] * 3
    assert inner.timeouts == [7.0] * 3


@pytest.mark.parametrize(("timeout", "slept"), [(2.0, 2.0), (None, 30.0)])
def test_a_hang_waits_out_the_request_timeout_then_times_out(timeout, slept):
    provider, inner, sleeps = chaos(ChaosConfig(llm_hang_rate=1.0))

    with pytest.raises(LLMTimeout, match="injected hang") as info:
        provider.chat(Role.BRAIN, "m", MESSAGES, timeout=timeout)
    assert sleeps == [slept]
    assert info.value.retryable and inner.timeouts == []


def test_without_a_fault_the_call_passes_through_to_the_real_provider():
    provider, inner, sleeps = chaos(ChaosConfig(seed=9, llm_error_rate=0.0001))

    answer = provider.chat(Role.CODE_REVIEWER, "model-b", MESSAGES, timeout=3.0, schema=REVIEW)
    assert answer == inner.chat(Role.CODE_REVIEWER, "model-b", MESSAGES)
    assert inner.schemas[0] is REVIEW  # the answer's schema reaches the real provider
    assert sleeps == []
    assert (provider.name, provider.server_address, provider.server_port) == (
        "echo",
        "echo.invalid",
        4242,
    )
    provider.close()
    assert inner.closed


def test_chaos_is_off_unless_a_fault_is_configured():
    assert not ChaosConfig().active
    assert not ChaosConfig(seed=3, llm_timeout_share=1.0).active
    assert ChaosConfig(llm_error_rate=0.1).active
    assert ChaosConfig(llm_latency=0.5).active
    assert ChaosConfig(llm_hang_rate=0.1).active


def test_a_rate_limit_is_a_retryable_error_with_its_retry_after():
    exc = llm_error("429", error_type="http_429", retry_after=4.0)
    assert isinstance(exc, LLMRateLimited) and exc.retry_after == 4.0
