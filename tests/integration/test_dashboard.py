"""The dashboard page, its JSON document, its event stream and the trace view, over HTTP.

These read the server-rendered HTML (what a browser without JavaScript shows); the
browser test (``test_dashboard_browser.py``) covers what the page's script does.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from factories import http_service, make_config, one_service_cycle, service_url

from hephaestus.performance import KPIS
from hephaestus.service.asgi import STATIC_DIR
from hephaestus.service.loop import Service

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


@pytest.fixture
def service(sample_repo: Path) -> Iterator[Service]:
    logger = logging.getLogger("hephaestus")
    level = logger.level
    logger.setLevel(logging.INFO)  # what `serve` configures; the trace view keeps these lines
    try:
        config = make_config(
            service={"jaeger_url": "http://jaeger:16686/"},
            telemetry={"test_spans": "all"},  # a span per test: the trace view folds them
        )
        with http_service(sample_repo, config) as running:
            yield running
    finally:
        logger.setLevel(level)


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_url(service), timeout=30) as client:
        yield client


def queue(client: httpx.Client, objective: str, correlation_id: str) -> None:
    response = client.post(
        "/api/objectives", json={"objective": objective, "correlation_id": correlation_id}
    )
    assert response.status_code == 202, response.text


# -- the page without JavaScript --------------------------------------------------------------
def test_the_page_shows_every_kpi_with_its_target_and_state_before_any_script_runs(service, client):
    one_service_cycle(service)

    page = client.get("/")

    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.text
    for kpi in KPIS:
        assert f'data-kpi="{kpi.key}"' in html
    success = re.search(
        r'<div class="kpi (\w+)" data-kpi="success_rate".*?kpi-value">([^<]+)<', html, re.S
    )
    assert success is not None and success.groups() == ("ok", "100.0 %")
    assert re.search(r'data-kpi="uptime".*?no data', html, re.S)  # memory cannot know uptime


def test_the_page_lists_recent_cycles_with_links_to_their_traces(service, client):
    one_service_cycle(service)
    [row] = client.get("/api/cycles", params={"limit": 1}).json()["cycles"]

    html = client.get("/").text

    assert f'<tr data-correlation-id="{row["correlation_id"]}">' in html
    assert f'href="/cycles/{row["correlation_id"]}"' in html
    assert row["objective"] in html
    assert row["commit_sha"][:10] in html
    assert re.search(r'data-outcome="succeeded">.*?<td class="num">1</td>', html, re.S)
    assert html.count("<rect ") == 1  # one bar in the duration chart


def test_a_hostile_objective_is_shown_as_text_never_as_markup(service, client):
    queue(client, HOSTILE, "hostile-1")
    one_service_cycle(service)

    html = client.get("/").text
    trace = client.get("/cycles/hostile-1").text

    for page in (html, trace):
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img" in page


def test_the_page_works_offline_from_package_files(client):
    html = client.get("/").text

    external = re.findall(r'(?:src|href)="(https?:)?//', html)
    assert external == []
    for asset in ("/static/dashboard.css", "/static/dashboard.js"):
        response = client.get(asset)
        assert response.status_code == 200
        assert response.content == (STATIC_DIR / asset.rsplit("/", 1)[1]).read_bytes()
        assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")


def test_a_missing_static_file_is_a_json_404(client):
    response = client.get("/static/nope.js")

    assert response.status_code == 404
    assert response.json()["error"] == "no such endpoint /static/nope.js; see /api/health"


# -- the document and the stream --------------------------------------------------------------
def test_the_document_carries_what_the_page_and_status_need(service, client):
    queue(client, "Add a docstring to the pricing module", "doc-1")
    one_service_cycle(service)
    queue(client, "Rewrite the warehouse in Rust", "doc-2")  # the offline brain cannot plan it

    document = client.get("/api/dashboard").json()

    assert document["status"] == "ok"
    assert document["cycles_run"] == 1
    assert document["queue_depth"] == 1
    assert sum(document["outcomes"].values()) == 1
    assert [c["correlation_id"] for c in document["cycles"]] == ["doc-1"]
    assert document["breakers"] == {"offline/hephaestus-offline": "closed"}
    assert [k["key"] for k in document["kpis"]] == [k.key for k in KPIS]
    assert {k["state"] for k in document["kpis"]} <= {"ok", "breach", "no_data"}


def events_of(response: httpx.Response) -> Iterator[dict]:
    """The ``data`` of each server-sent event, as it arrives."""
    data = None
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            yield data
            data = None


def test_the_event_stream_sends_a_snapshot_when_a_cycle_finishes(service, client):
    with client.stream("GET", "/api/events") as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = events_of(response)
        first = next(events)
        worker = threading.Thread(target=one_service_cycle, args=(service,))
        worker.start()
        arrived = next(e for e in events if e["cycles_run"] == 1)
        worker.join()

    assert first["cycles_run"] == 0 and first["cycles"] == []
    assert arrived["cycles"][0]["status"] == "finished"


def test_stopping_the_server_ends_open_streams(service):
    with (
        httpx.Client(base_url=service_url(service), timeout=30) as client,
        client.stream("GET", "/api/events") as response,
    ):
        events = events_of(response)
        next(events)
        stopper = threading.Thread(target=service.http.stop)
        stopper.start()
        for _ in events:  # ends: the server closed the stream
            pass
        stopper.join()

    assert service.dashboard.closing.is_set()


# -- the trace view ---------------------------------------------------------------------------
def test_the_trace_view_shows_the_span_tree_and_the_cycles_log_lines(service, client):
    one_service_cycle(service)  # the brain picks an objective the offline engine can carry out
    row = client.get("/api/cycles", params={"limit": 1}).json()["cycles"][0]
    assert row["outcome"] == "succeeded"

    by_correlation = client.get(f"/cycles/{row['correlation_id']}")
    by_trace = client.get(f"/cycles/{row['trace_id']}")

    assert by_correlation.status_code == by_trace.status_code == 200
    html = by_correlation.text
    assert by_trace.text == html  # the same cycle, whichever id names it
    assert f'<code id="trace-id">{row["trace_id"]}</code>' in html
    for name in (
        "invoke_workflow hephaestus.cycle",
        "invoke_agent architect",
        "hephaestus.validate",
    ):
        assert f'data-span="{name}"' in html
    assert "outcome=succeeded" in html
    assert 'data-span="pytest session"' in html
    assert "passing tests" in html  # the test spans are folded
    assert '<table id="logs"' in html and "cycle finished" in html
    assert f'href="http://jaeger:16686/trace/{row["trace_id"]}"' in html


def test_the_trace_view_marks_a_failed_stage_and_its_error_type(service, client):
    queue(client, "Rewrite the warehouse in Rust", "fails-1")
    one_service_cycle(service)

    html = client.get("/cycles/fails-1").text

    assert re.search(r'<tr class="error" data-span="[^"]+">', html)
    assert "invalid_plan" in html


def test_an_unknown_cycle_is_a_404_page_that_says_where_it_looked(client):
    response = client.get("/cycles/no-such-cycle")

    assert response.status_code == 404
    assert "text/html" in response.headers["Content-Type"]
    assert "traces.jsonl" in response.text or "no cycle with this id" in response.text


@pytest.mark.parametrize("bad", ["a b", "-x", "x" * 200])
def test_a_malformed_cycle_id_is_refused(client, bad):
    response = client.get(f"/cycles/{bad}")

    assert response.status_code == 404
    assert "correlation id" in response.json()["error"]
