"""The HTTP server as a hostile client meets it: bursts, slow clients, odd methods, limits.

Everything runs over real sockets against the real server (Starlette on uvicorn) of a
:class:`Service` whose cycle loop is not running. Nothing here asserts a wall time: a test
asserts who got an answer, which answer, and in what order things happened.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from factories import ListHandler, http_service, make_config, run_cli, service_url

from hephaestus.service.loop import Service

BURST = 200
SLOW_CLIENTS = 500


def limited(sample_repo: Path, **service: object) -> Iterator[Service]:
    with http_service(sample_repo, make_config(service=service)) as running:
        yield running


@pytest.fixture
def service(sample_repo: Path) -> Iterator[Service]:
    yield from limited(sample_repo)


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_url(service), timeout=30) as client:
        yield client


async def burst(url: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        responses = await asyncio.gather(*(client.get(url) for _ in range(count)))
    return [r.status_code for r in responses]


def slow_client(address: tuple[str, int]) -> socket.socket:
    """A connection that has sent half a request head and then nothing."""
    conn = socket.create_connection(address, timeout=30)
    conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    return conn


# -- load -------------------------------------------------------------------------------------
def test_a_burst_of_concurrent_scrapes_is_answered_in_full(service):
    statuses = asyncio.run(burst(f"{service_url(service)}/metrics", BURST))

    assert statuses == [200] * BURST


def test_slow_clients_do_not_stop_metrics_from_answering(service, client):
    with ExitStack() as stack:
        for _ in range(SLOW_CLIENTS):
            stack.enter_context(slow_client(service.http.address))

        scrape = client.get("/metrics")
        health = client.get("/healthz")

    assert scrape.status_code == 200
    assert "# TYPE hephaestus_cycles_total counter" in scrape.text
    assert health.status_code == 200


def test_a_client_too_slow_to_send_its_request_is_cut_off_with_408(sample_repo):
    for running in limited(sample_repo, read_timeout=0.5):
        with slow_client(running.http.address) as conn:
            received = b""
            while chunk := conn.recv(4096):  # the server closes the connection
                received += chunk

        assert received.startswith(b"HTTP/1.1 408 ")
        assert b"not received within 0.5s" in received


def test_a_connection_that_sends_nothing_is_closed(sample_repo):
    for running in limited(sample_repo, read_timeout=0.5, keep_alive_timeout=0.2):
        with socket.create_connection(running.http.address, timeout=30) as conn:
            assert conn.recv(4096) == b""  # closed without an answer: there was no request


def test_connections_beyond_the_limit_get_503_until_some_close(sample_repo):
    for running in limited(sample_repo, max_connections=5, read_timeout=60):
        url = service_url(running)
        with ExitStack() as stack:
            for _ in range(5):
                stack.enter_context(socket.create_connection(running.http.address, timeout=30))
            refused = httpx.get(f"{url}/healthz", timeout=30)
        after = httpx.get(f"{url}/healthz", timeout=30)

        assert refused.status_code == 503
        assert refused.headers["Connection"] == "close"
        assert after.status_code == 200


# -- methods ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/health", "/api/cycles"])
def test_head_answers_like_get_without_a_body(client, path):
    get = client.get(path)
    head = client.head(path)

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    if path == "/healthz":  # a body that does not change between two calls
        assert head.headers["Content-Length"] == get.headers["Content-Length"]


def test_head_on_metrics_negotiates_like_get(client):
    head = client.head("/metrics", headers={"Accept": "application/openmetrics-text"})

    assert head.status_code == 200
    assert head.headers["Content-Type"].startswith("application/openmetrics-text")
    assert head.content == b""


@pytest.mark.parametrize(
    ("path", "allow"),
    [("/metrics", "GET"), ("/healthz", "GET"), ("/api/objectives", "POST")],
)
def test_options_lists_the_allowed_methods(client, path, allow):
    response = client.options(path)

    assert response.status_code == 204
    assert response.headers["Allow"] == allow
    assert response.content == b""


@pytest.mark.parametrize("method", ["BREW", "TRACE", "PROPFIND"])
def test_an_unknown_method_is_not_allowed_and_says_which_is(client, method):
    response = client.request(method, "/healthz")

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert response.json()["error"] == f"{method} is not allowed on /healthz; use GET"


def test_head_on_a_post_only_endpoint_is_not_allowed(client):
    response = client.head("/api/objectives")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_a_chunked_body_is_read_up_to_the_limit(service, client):
    def chunks(size: int) -> Iterator[bytes]:
        body = b'{"objective": "' + b"x" * (size - 17) + b'"}'
        yield from (body[i : i + 1000] for i in range(0, len(body), 1000))

    small = client.post(
        "/api/objectives",
        content=chunks(100),
        headers={"Content-Type": "application/json"},
    )
    large = client.post(
        "/api/objectives",
        content=chunks(40_000),
        headers={"Content-Type": "application/json"},
    )

    assert small.status_code == 202, small.text
    assert large.status_code == 413
    assert large.headers["Connection"] == "close"
    assert len(service.queue) == 1


def test_a_long_request_target_is_refused_even_when_it_arrives_whole(client):
    response = client.get("/healthz", params={"q": "x" * 9000})

    assert response.status_code == 414
    assert "longer than 8192 bytes" in response.json()["error"]


def test_a_request_head_over_the_limit_is_refused_with_431(service):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Filler: " + b"y" * 20_000 + b"\r\n"
    with socket.create_connection(service.http.address, timeout=30) as conn:
        for start in range(0, len(head), 4096):  # in pieces: h11 judges an incomplete head
            conn.sendall(head[start : start + 4096])
        received = b""
        while chunk := conn.recv(4096):
            received += chunk

    assert received.startswith(b"HTTP/1.1 431 ")


# -- operations -------------------------------------------------------------------------------
def test_serve_on_a_busy_port_says_which_and_exits_2(sample_repo):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli("serve", "--project", sample_repo, "--port", str(port), timeout=120)

    assert result.returncode == 2  # a usage error: the operator picks another --port
    assert f"hephaestus: error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_servers_own_warnings_come_out_as_our_log_records(service):
    logger = logging.getLogger("hephaestus.service.http")
    records = ListHandler()
    logger.addHandler(records)
    try:
        with socket.create_connection(service.http.address, timeout=30) as conn:
            conn.sendall(b"GARBAGE\r\n\r\n")
            conn.recv(4096)
    finally:
        logger.removeHandler(records)

    assert ("uvicorn.error", "Invalid HTTP request received.") in [
        (r.name, r.getMessage()) for r in records.records
    ]
