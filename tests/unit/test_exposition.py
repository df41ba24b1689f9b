"""Coalesced /metrics rendering: a burst shares renders, and no answer predates its request."""

from __future__ import annotations

import threading

from hephaestus.telemetry.exposition import Coalescer


def test_concurrent_callers_share_renders_that_started_after_they_arrived():
    state = {"value": 0, "renders": 0}
    first_started, release = threading.Event(), threading.Event()

    def produce(_key: str) -> int:
        state["renders"] += 1
        seen = state["value"]
        if state["renders"] == 1:
            first_started.set()
            release.wait(10)
        return seen

    render = Coalescer(produce)
    answers: dict[str, int] = {}
    early = threading.Thread(target=lambda: answers.__setitem__("early", render("k")))
    early.start()
    first_started.wait(10)
    state["value"] = 1  # changes while the first render runs
    late = [
        threading.Thread(target=lambda n=n: answers.__setitem__(n, render("k"))) for n in range(20)
    ]
    for thread in late:
        thread.start()
    release.set()
    for thread in (early, *late):
        thread.join(10)

    assert answers["early"] == 0
    assert {answers[n] for n in range(20)} == {1}  # never the render that began before them
    assert state["renders"] == 2


def test_a_failed_render_raises_to_its_caller_and_the_next_caller_renders_again():
    calls = []

    def produce(key: str) -> str:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return "ok"

    render = Coalescer(produce)
    try:
        render("k")
    except RuntimeError:
        pass

    assert render("k") == "ok"
    assert calls == ["k", "k"]


def test_formats_render_separately():
    render = Coalescer(lambda key: key.upper())

    assert (render("text"), render("openmetrics")) == ("TEXT", "OPENMETRICS")
