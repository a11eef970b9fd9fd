"""The gateway in front of the APIs (nginx, as `rapport up` runs it) and what gunicorn answers
by itself: real processes on free loopback ports, a temporary run dir, the test stores.

One feed API runs under gunicorn as the local stack runs it (the process table's argv and
deploy/gunicorn.conf.py), with one process of 4 threads; the other services' upstreams point
at ports nobody listens on.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from shared.settings import REPO_ROOT, SERVICES
from shared.stack import gateway, processes
from shared.stack.processes import PROCESSES
from tests.support.infra import free_ports

CLIENT_TIMEOUT = 2  # gunicorn's, for this test's API (10 s by default)


def _wait(probe, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(settings, tmp_path_factory):
    """``(settings, feed_api_port)``: a feed API under gunicorn and the gateway in front of it."""
    run_dir = tmp_path_factory.mktemp("gateway-run")
    *ports, gateway_port = free_ports(len(SERVICES) + 1)
    local = settings.replace(run_dir=run_dir, gateway_port=gateway_port, ports=dict(zip(SERVICES, ports)))
    api = next(p for p in PROCESSES if p.name == "feed-api")
    env = {**os.environ, **local.as_env(), "WEB_CONCURRENCY": "1", "RAPPORT_GUNICORN_THREADS": "4",
           "RAPPORT_GUNICORN_CLIENT_TIMEOUT": str(CLIENT_TIMEOUT)}
    env = processes.environment(api, local, env)
    argv = [str(Path(sys.executable).parent / api.argv[0]), *api.argv[1:]]
    processes.spawn(run_dir, api.name, argv, api.marker, env=env, cwd=REPO_ROOT)
    try:
        _wait(lambda: gateway.healthy(local.ports["feed"]), 30,
              "the feed API never answered:\n" + processes.log_tail(run_dir, api.name))
        gateway.start(local)
        yield local
    finally:
        gateway.stop(local)
        processes.stop(run_dir, api.name)
    assert not processes.port_in_use("127.0.0.1", gateway_port)


def via_gateway(stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.gateway_port}{path}"


def direct(stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.ports['feed']}{path}"


def assert_problem(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].split(";")[0] == "application/problem+json", response.text
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


# --- routes ---------------------------------------------------------------------------------

def test_a_service_path_reaches_its_api_without_the_prefix_and_keeps_the_request_id(stack):
    response = requests.get(via_gateway(stack, "/feed/healthz"), headers={"X-Request-Id": "r-123"}, timeout=5)

    assert response.json() == {"status": "ok", "service": "feed"}
    assert response.headers["X-Request-Id"] == "r-123"


def test_an_api_s_own_problem_passes_through_the_gateway_untouched(stack):
    assert_problem(requests.get(via_gateway(stack, "/feed/v1/feed"), timeout=5), 401, "missing_token")


def test_a_path_under_no_service_is_a_404_problem(stack):
    assert_problem(requests.get(via_gateway(stack, "/nowhere/v1/feed"), timeout=5), 404, "not_found")


def test_a_service_that_does_not_answer_is_a_502_problem_to_retry(stack):
    response = requests.get(via_gateway(stack, "/connections/v1/invitations"), timeout=5)
    assert_problem(response, 502, "service_unreachable")
    assert response.headers["Retry-After"] == "1"


def test_the_docs_page_through_the_gateway_loads_its_assets_and_the_document_under_the_prefix(stack):
    import re

    page = requests.get(via_gateway(stack, "/feed/docs"), timeout=5)
    assert page.status_code == 200, page.text
    html = page.text
    assert 'url: "/feed/openapi.json"' in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(url.startswith("/feed/docs/assets/") for url in urls), urls
    for url in [*urls, "/feed/openapi.json"]:
        assert requests.get(via_gateway(stack, url), timeout=5).status_code == 200, url


# --- oversized requests: problem+json from the gateway and from gunicorn itself ------------------

def test_the_gateway_answers_oversized_requests_with_problems(stack, auth, unique):
    url = via_gateway(stack, "/feed/v1/posts")
    assert_problem(requests.get(via_gateway(stack, "/feed/v1/" + "a" * 9000), timeout=5), 414, "request_line_too_long")
    assert_problem(requests.get(url, headers={"X-Big": "a" * 9000}, timeout=5), 431, "headers_too_large")
    body = b'{"text": "' + b"x" * stack.max_body_bytes + b'"}'
    assert_problem(requests.post(url, data=body, headers={**auth(unique("ada")), "Content-Type": "application/json"},
                                 timeout=10), 413, "body_too_large")


def test_gunicorn_answers_a_long_request_line_or_header_with_a_problem_not_an_html_page(stack):
    assert_problem(requests.get(direct(stack, "/v1/" + "a" * 5000), timeout=5), 414, "request_line_too_long")
    assert_problem(requests.get(direct(stack, "/v1/feed"), headers={"X-Big": "a" * 9000}, timeout=5),
                   431, "headers_too_large")
    with socket.create_connection(("127.0.0.1", stack.ports["feed"]), timeout=5) as conn:
        conn.sendall(b"NOT A REQUEST LINE\r\n\r\n")
        reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400 ") and b"Content-Type: application/problem+json" in reply
    assert b'"code": "malformed_request"' in reply


def test_gunicorn_drops_a_client_that_stops_sending_mid_request(stack):
    with socket.create_connection(("127.0.0.1", stack.ports["feed"]), timeout=CLIENT_TIMEOUT + 8) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
        started = time.monotonic()
        try:
            reply = conn.recv(4096)
        except ConnectionResetError:
            reply = b""
        waited = time.monotonic() - started
    assert reply == b"" and waited < CLIENT_TIMEOUT + 4, (reply, waited)


# --- slow clients ---------------------------------------------------------------------------------

def test_500_slow_clients_at_the_gateway_leave_other_members_requests_unaffected(stack, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    session = requests.Session()
    post = session.post(via_gateway(stack, "/feed/v1/posts"), json={"text": "still here"}, headers=auth(ada), timeout=5)
    assert post.status_code == 201, post.text
    url = via_gateway(stack, f"/feed/v1/members/{ada}/posts")

    # Each slow client starts a post and then sends its body a byte a second: nginx holds them
    # all, and the API (4 threads) sees none of them.
    slow = []
    for _ in range(500):
        conn = socket.create_connection(("127.0.0.1", stack.gateway_port), timeout=5)
        conn.sendall(b"POST /feed/v1/posts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{")
        slow.append(conn)
    stop = threading.Event()

    def trickle():
        while not stop.wait(1.0):
            for conn in slow:
                conn.sendall(b" ")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        timings = []
        began = time.monotonic()
        while time.monotonic() - began < 5:
            started = time.monotonic()
            response = session.get(url, headers=auth(grace), timeout=5)
            timings.append(time.monotonic() - started)
            assert response.status_code == 200, response.text
            assert [p["id"] for p in response.json()["items"]] == [post.json()["id"]]
            time.sleep(0.05)
        # The slow clients were still connected, still unanswered, all along.
        still_waiting = 0
        for conn in slow:
            conn.setblocking(False)
            try:
                conn.recv(1, socket.MSG_PEEK)  # an answer, or the end of the connection
            except BlockingIOError:
                still_waiting += 1
            conn.setblocking(True)
    finally:
        stop.set()
        trickler.join(5)
        for conn in slow:
            conn.close()

    assert still_waiting == 500
    assert len(timings) >= 20 and max(timings) < 1.0, (len(timings), max(timings))


def test_rapport_status_lists_the_gateway_running_with_its_pid_and_port(stack, capsys):
    from shared.stack import runner

    runner.status(stack)

    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gateway ")]
    pid = processes.running_pid(stack.run_dir, gateway.NAME)
    assert line.split() == ["gateway", "running", "pid", str(pid), "port", str(stack.gateway_port)]
