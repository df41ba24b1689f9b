"""The service's HTTP endpoints, spoken to over real sockets.

A :class:`Service` wraps a real cycle runner on a real git repo. Only its HTTP server runs in
the background; a test that needs a cycle runs one with ``one_service_cycle(service)``,
exactly as the service loop would. The last test starts ``hephaestus serve`` the way an
operator does and stops it with SIGTERM.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import require_binary
from factories import (
    free_port,
    http_service,
    make_config,
    one_service_cycle,
    serve,
    service_url,
    start_conflicting_merge,
    wait_until,
)

from hephaestus.agent.memory import Memory
from hephaestus.service.http import MAX_BODY_BYTES, MAX_OBJECTIVE_CHARS
from hephaestus.service.loop import Service

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def service(sample_repo: Path) -> Iterator[Service]:
    """A service on the sample repo (offline provider) with only its HTTP server running."""
    with http_service(sample_repo) as service:
        yield service


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_url(service), timeout=10) as client:
        yield client


def post_objective(client: httpx.Client, body: object) -> httpx.Response:
    return client.post("/api/objectives", content=json.dumps(body), headers=JSON)


def raw_exchange(service: Service, payload: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``payload`` on a fresh connection; return what came back and whether it closed."""
    with socket.create_connection(service.http.address, timeout=timeout) as conn:
        conn.sendall(payload)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            return received, False
    return received, True


# -- metrics, liveness, readiness --------------------------------------------------------------
def test_metrics_are_prometheus_text_by_default(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE hephaestus_cycles_total counter" in response.text


def test_liveness_answers_while_the_process_runs(client):
    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_when_memory_is_writable_and_a_cycle_can_run(client):
    response = client.get("/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_not_ready_while_another_process_holds_the_memory_lock(service, client):
    path = service.runner.memory.path
    service.runner.memory.close()
    service.runner.memory = Memory(path, busy_timeout=0.2)  # fail fast instead of after 5 s
    locker = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        locked = client.get("/readyz")
        health = client.get("/api/health").json()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    released = client.get("/readyz")

    assert locked.status_code == 503
    assert locked.json()["status"] == "not ready"
    [reason] = locked.json()["reasons"]
    assert reason.startswith("memory: ") and "locked" in reason
    assert health["status"] == "degraded"
    assert health["components"]["memory"]["status"] == "error"
    assert released.status_code == 200  # readiness comes back with the lock released


def test_not_ready_while_stopping_but_still_alive(service, client):
    service.stop.request("SIGTERM")

    ready = client.get("/readyz")
    alive = client.get("/healthz")

    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["service: shutting down"]
    assert alive.status_code == 200


# -- /api/health and /api/cycles ---------------------------------------------------------------
def test_health_before_any_cycle_reports_components_and_no_last_cycle(client):
    health = client.get("/api/health")

    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["uptime_seconds"] >= 0
    assert (body["cycles_run"], body["consecutive_failures"], body["last_cycle"]) == (0, 0, None)
    assert {name: c["status"] for name, c in body["components"].items()} == {
        "memory": "ok",
        "repository": "ok",
        "workspace": "ok",
        "llm": "ok",
        "sandbox": "ok" if shutil.which("bwrap") else "degraded",
    }


def test_health_shows_whether_validation_is_sandboxed(sample_repo):
    require_binary("bwrap")
    states = {}
    for mode in ("bwrap", "none"):
        config = make_config(validation={"sandbox": mode})
        with (
            http_service(sample_repo, config) as service,
            httpx.Client(base_url=service_url(service), timeout=10) as http,
        ):
            states[mode] = (http.get("/api/health").json(), http.get("/readyz").status_code)

    sandboxed, _ = states["bwrap"]
    assert sandboxed["components"]["sandbox"] == {
        "status": "ok",
        "mode": "bwrap",
        "bwrap": shutil.which("bwrap"),
    }
    unsandboxed, ready = states["none"]
    assert unsandboxed["status"] == "degraded"
    assert unsandboxed["components"]["sandbox"]["status"] == "degraded"
    assert "run on the host" in unsandboxed["components"]["sandbox"]["reason"]
    assert ready == 200  # unsandboxed is a risk the operator chose, not a reason to stop


def test_not_ready_while_the_repository_is_in_the_middle_of_a_merge(service, client, sample_repo):
    assert client.get("/readyz").status_code == 200
    start_conflicting_merge(sample_repo)

    response = client.get("/readyz")

    assert response.status_code == 503
    (reason,) = response.json()["reasons"]
    assert reason.startswith("repository: the repository is in the middle of a merge")
    assert "git merge --abort" in reason


def test_health_after_a_cycle_names_it_by_correlation_and_trace_id(service, client):
    started = time.time()
    one_service_cycle(service)

    body = client.get("/api/health").json()
    waited = time.time() - started
    [row] = client.get("/api/cycles", params={"limit": 1}).json()["cycles"]

    last = body["last_cycle"]
    assert (last["outcome"], last["reason"]) == ("succeeded", "committed")
    assert last["correlation_id"] == row["correlation_id"]
    assert last["trace_id"] == row["trace_id"] and TRACE_ID.match(last["trace_id"])
    assert 0 <= last["age_seconds"] <= round(waited, 3) + 0.001  # the cycle ended after `started`
    assert body["cycles_run"] == 1
    assert body["consecutive_failures"] == 0
    assert body["uptime_seconds"] > 0


def test_health_counts_consecutive_failures(service, client):
    client.post("/api/objectives", json={"objective": "Rewrite the warehouse in Rust"})
    one_service_cycle(service)  # the offline brain cannot plan this: invalid_plan

    last = client.get("/api/health").json()

    assert last["last_cycle"]["outcome"] == "failed"
    assert last["consecutive_failures"] == 1


def test_recent_cycles_come_newest_first_with_their_ids(service, client):
    one_service_cycle(service)
    one_service_cycle(service)

    one = client.get("/api/cycles", params={"limit": 1})
    both = client.get("/api/cycles", params={"limit": 5})

    assert one.status_code == both.status_code == 200
    assert len(one.json()["cycles"]) == 1
    rows = both.json()["cycles"]
    assert [r["cycle_number"] for r in rows] == [2, 1]
    assert rows[0] == one.json()["cycles"][0]
    assert len({r["correlation_id"] for r in rows}) == 2
    assert all(TRACE_ID.match(r["trace_id"]) for r in rows)
    assert rows[0]["trace_id"] != rows[1]["trace_id"]  # one trace per cycle


@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "2.5", "1e2"])
def test_a_cycles_limit_outside_1_to_500_is_a_bad_request(client, limit):
    response = client.get("/api/cycles", params={"limit": limit})

    assert response.status_code == 400
    assert "limit must be an integer from 1 to 500" in response.json()["error"]


# -- POST /api/objectives ----------------------------------------------------------------------
def test_a_queued_objective_gets_a_correlation_id_its_cycle_carries(service, client):
    response = post_objective(client, {"objective": "Add a docstring to the pricing module"})

    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["position"]) == ("queued", 1)
    correlation_id = body["correlation_id"]
    assert str(uuid.UUID(correlation_id)) == correlation_id

    one_service_cycle(service)

    row = service.runner.memory.find(correlation_id)
    assert row is not None and row["status"] == "finished"
    assert row["objective"] == "Add a docstring to the pricing module"
    assert len(service.queue) == 0


def test_a_caller_supplied_correlation_id_is_kept(service, client):
    response = post_objective(
        client,
        {"objective": "  Add a docstring\n to   pricing ", "correlation_id": "deploy-42.retry_1:a"},
    )

    assert response.status_code == 202
    assert response.json()["correlation_id"] == "deploy-42.retry_1:a"

    one_service_cycle(service)

    [row] = client.get("/api/cycles", params={"limit": 1}).json()["cycles"]
    assert row["correlation_id"] == "deploy-42.retry_1:a"
    assert row["objective"] == "Add a docstring to pricing"  # whitespace normalised
    assert TRACE_ID.match(row["trace_id"])


def test_queued_objectives_are_answered_with_their_position(client):
    positions = [
        post_objective(client, {"objective": f"Objective {n}"}).json()["position"] for n in range(3)
    ]

    assert positions == [1, 2, 3]


def test_a_json_content_type_with_parameters_is_accepted(client):
    response = client.post(
        "/api/objectives",
        content=b'{"objective": "x"}',
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )

    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b'{"objective": "\xff"}', "the body is not valid JSON"),
        (b'["objective"]', "must be a JSON object"),
        (b'"fix the bug"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"{}", "'objective' must be a non-empty string"),
        (b'{"objective": ""}', "'objective' must be a non-empty string"),
        (b'{"objective": " \\n\\t "}', "'objective' must be a non-empty string"),
        (b'{"objective": 42}', "'objective' must be a non-empty string"),
        (b'{"objective": null}', "'objective' must be a non-empty string"),
        (b'{"objective": ["a"]}', "'objective' must be a non-empty string"),
        (
            json.dumps({"objective": "x" * (MAX_OBJECTIVE_CHARS + 1)}).encode(),
            f"at most {MAX_OBJECTIVE_CHARS} are allowed",
        ),
        (b'{"objective": "x", "correlation_id": ""}', "'correlation_id' must be"),
        (b'{"objective": "x", "correlation_id": "has space"}', "'correlation_id' must be"),
        (b'{"objective": "x", "correlation_id": "-leading-dash"}', "'correlation_id' must be"),
        (b'{"objective": "x", "correlation_id": "a/b"}', "'correlation_id' must be"),
        (
            json.dumps({"objective": "x", "correlation_id": "a" * 129}).encode(),
            "'correlation_id' must be",
        ),
        (b'{"objective": "x", "correlation_id": 42}', "'correlation_id' must be"),
        (b'{"objective": "x", "correlation_id": "abc\\n"}', "'correlation_id' must be"),
        (b'{"objective": "x", "correlation_id": "../../victim"}', "'correlation_id' must be"),
        (b'{"objective": "x", "priority": 1}', "unknown field(s) priority"),
        (b"[" * 8000 + b"]" * 8000, "nested too deeply"),
        (b'{"objective": "x", "c": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    ],
    ids=lambda value: (
        value[:30].decode("ascii", "backslashreplace") if isinstance(value, bytes) else None
    ),
)
def test_a_bad_objective_body_is_a_bad_request_that_queues_nothing(service, client, body, message):
    response = client.post("/api/objectives", content=body, headers=JSON)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert len(service.queue) == 0


def test_the_longest_allowed_objective_and_correlation_id_are_accepted(client):
    response = post_objective(
        client, {"objective": "x" * MAX_OBJECTIVE_CHARS, "correlation_id": "a" * 128}
    )

    assert response.status_code == 202


def test_a_body_over_16_kib_is_too_large_and_exactly_16_kib_is_read(service, client):
    def body_of(size: int) -> bytes:
        head = b'{"objective": "'
        return head + b"x" * (size - len(head) - 2) + b'"}'

    at_limit = client.post("/api/objectives", content=body_of(MAX_BODY_BYTES), headers=JSON)
    over = client.post("/api/objectives", content=body_of(MAX_BODY_BYTES + 1), headers=JSON)

    assert MAX_BODY_BYTES == 16 * 1024
    assert at_limit.status_code == 400  # read and judged: the objective is too long
    assert over.status_code == 413
    assert f"at most {MAX_BODY_BYTES}" in over.json()["error"]
    assert len(service.queue) == 0
    assert client.get("/healthz").status_code == 200


def test_an_objective_sent_as_text_is_an_unsupported_media_type(service, client):
    response = client.post(
        "/api/objectives", content=b'{"objective": "x"}', headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    assert len(service.queue) == 0


def test_a_correlation_id_already_queued_is_a_conflict(service, client):
    body = {"objective": "Add a docstring", "correlation_id": "twice-1"}

    first = post_objective(client, body)
    second = post_objective(client, body)

    assert (first.status_code, second.status_code) == (202, 409)
    assert "already queued" in second.json()["error"]
    assert len(service.queue) == 1


def test_a_correlation_id_already_in_memory_is_a_conflict(service, client):
    post_objective(client, {"objective": "Add a docstring", "correlation_id": "done-1"})
    one_service_cycle(service)

    again = post_objective(client, {"objective": "Something else", "correlation_id": "done-1"})

    assert again.status_code == 409
    assert "already names a cycle" in again.json()["error"]
    assert len(service.queue) == 0


def test_a_full_queue_asks_the_caller_to_retry_later(service, client):
    service.queue.maxsize = 1
    first = post_objective(client, {"objective": "first"})

    second = post_objective(client, {"objective": "second"})

    assert first.status_code == 202
    assert second.status_code == 503
    assert int(second.headers["Retry-After"]) > 0
    assert "retry later" in second.json()["error"]
    assert len(service.queue) == 1


# -- routing and robustness --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/index.html"),  # "/" is the dashboard
        ("GET", "/nope"),
        ("GET", "/api"),
        ("POST", "/api/objective"),
        ("GET", "/metrics/extra"),
    ],
)
def test_an_unknown_path_is_not_found(client, method, path):
    response = client.request(method, path, content=b"{}", headers=JSON)

    assert response.status_code == 404
    assert path in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/metrics", "GET"),
        ("POST", "/healthz", "GET"),
        ("PUT", "/readyz", "GET"),
        ("PATCH", "/api/cycles", "GET"),
        ("GET", "/api/objectives", "POST"),
    ],
)
def test_a_wrong_method_is_not_allowed_and_says_which_is(client, method, path, allow):
    response = client.request(method, path)

    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert f"use {allow}" in response.json()["error"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"HELLO THERE FRIEND\r\n\r\n", b"400"),
        (b"GET /healthz HTTP/9.9\r\n\r\n", b"505"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"POST /api/objectives HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}", b"400"),
        (b"POST /api/objectives HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", b"400"),
        # RFC 9112 §6.3: an invalid Content-Length is a 400 whatever the path
        (b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", b"400"),
    ],
    ids=[
        "one-word",
        "bad-version-word",
        "http-9.9",
        "uri-too-long",
        "content-length-abc",
        "content-length-negative",
        "bad-length-on-unknown-path",
    ],
)
def test_a_malformed_request_gets_an_error_and_the_server_keeps_serving(
    service, client, payload, status
):
    received, closed = raw_exchange(service, payload)

    # HTTP/1.x gets a status line; a request without a version is answered like HTTP/0.9
    assert re.match(rb"HTTP/1\.[01] " + status, received) or b"Error code: " + status in received
    assert closed, "after a request it cannot frame, the server must close the connection"
    assert client.get("/healthz").status_code == 200


def test_an_invalid_content_length_does_not_smuggle_a_second_request(service):
    smuggled = (
        b"POST /api/objectives HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
        b"POST /api/objectives HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 17\r\n\r\n{"objective":"x"}'
    )

    received, closed = raw_exchange(service, smuggled)

    assert received.startswith(b"HTTP/1.1 400 ")
    assert received.count(b"HTTP/1.1 ") == 1
    assert closed
    assert len(service.queue) == 0


def test_a_client_that_disconnects_early_does_not_hurt_the_server(service, client):
    for payload in (
        b"",
        b"GET /metr",
        b"POST /api/objectives HTTP/1.1\r\nContent-Length: 100\r\n\r\n{",
    ):
        with socket.create_connection(service.http.address, timeout=5) as conn:
            conn.sendall(payload)

    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200


# -- the real command --------------------------------------------------------------------------


@pytest.mark.slow
def test_serve_runs_cycles_takes_objectives_and_stops_cleanly_on_sigterm(sample_repo, tmp_path):
    port, log = free_port(), tmp_path / "serve.log"
    with (
        serve(sample_repo, port, log, interval=0.2) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client,
    ):

        def wait(check, what):  # returns at the event; the bound only ends a hopeless wait
            return wait_until(check, 120, what, [proc], [log])

        wait(lambda: client.get("/readyz").status_code == 200, "/readyz 200")
        wait(lambda: client.get("/api/health").json()["cycles_run"] >= 2, "two cycles")

        queued = client.post(
            "/api/objectives",
            json={
                "objective": "Add a docstring to the pricing module",
                "correlation_id": "serve-e2e-1",
            },
        )
        assert queued.status_code == 202, queued.text

        def finished_row():
            rows = client.get("/api/cycles", params={"limit": 50}).json()["cycles"]
            return next(
                (
                    r
                    for r in rows
                    if r["correlation_id"] == "serve-e2e-1" and r["status"] == "finished"
                ),
                None,
            )

        row = wait(finished_row, "the queued objective's cycle")
        assert row["objective"] == "Add a docstring to the pricing module"
        assert TRACE_ID.match(row["trace_id"])

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0

    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(e["event"] == "service started" for e in events)
    stopped = [e for e in events if e["event"] == "service stopped"]
    assert [e["signal"] for e in stopped] == ["SIGTERM"]
    assert any(
        e["event"] == "cycle finished" and e.get("correlation_id") == "serve-e2e-1" for e in events
    )
