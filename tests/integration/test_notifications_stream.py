"""The live stream: notifications as server-sent events, over a real HTTP connection.

The API runs under gunicorn with the gevent worker (as in production), fed by the real
notifications worker; a ``requests`` client reads the event stream.
"""
from __future__ import annotations

import os
import time
import uuid

import pytest
import requests
from kafka import KafkaProducer

from bench.support import gunicorn, served
from services.notifications import live
from services.notifications import store as keys
from services.notifications.app import create_app
from shared import store_client
from shared.auth import mint_token
from shared.clock import now_ms, parse_rfc3339, rfc3339
from shared.events import encode, new_event
from tests.support.streams import EventStream


def store_connections(pid: int, port: int) -> int:
    """Open TCP connections to ``port`` of gunicorn ``pid`` and its worker processes."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    inodes = set()
    for p in pids:
        for fd in os.listdir(f"/proc/{p}/fd"):
            try:
                target = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            remote_port, state, inode = int(fields[2].split(":")[1], 16), fields[3], fields[9]
            if remote_port == port and state == "01" and inode in inodes:  # 01: ESTABLISHED
                count += 1
    return count


def open_stream(base: str, token: str | None, last_event_id: str | None = None,
                ticket: str | None = None) -> EventStream:
    """A client of ``/v1/notifications/stream`` whose ``next_event`` is the next notification."""
    return EventStream(base, "/v1/notifications/stream", token, last_event_id, ticket, only="notification")


@pytest.fixture(scope="module")
def server(settings, workers):
    workers("notifications")
    with gunicorn("notifications", settings, workers=1) as base:  # gevent, as deployed
        yield base


@pytest.fixture(scope="module")
def like(settings):
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")

    def publish(author: str, actor: str, post_id: str | None = None) -> str:
        post_id = post_id or f"p~{uuid.uuid4().hex[:12]}"
        event = new_event("feed", "post.liked", {"post_id": post_id, "author": author, "actor": actor,
                                                 "at": rfc3339(now_ms())})
        producer.send(settings.topic("feed.events"), key=event.key.encode(), value=encode(event)).get(10)
        return post_id

    yield publish
    producer.close()


@pytest.fixture
def token(settings):
    return lambda member: mint_token(member, settings.jwt_secret)


def test_a_new_notification_arrives_on_the_open_stream(server, like, token, unique):
    grace, ada = unique("grace"), unique("ada")
    stream = open_stream(server, token(grace))
    try:
        assert stream.response.status_code == 200
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        sent = time.monotonic()
        post = like(grace, ada)

        event = stream.next_event()

        print(f"delivered in {time.monotonic() - sent:.3f}s")
        assert (event["type"], event["actors"], event["object"], event["read"]) == ("post_liked", [ada], post, False)
        assert event["summary"] == f"{ada} liked your post"
    finally:
        stream.close()


def test_a_group_that_grows_is_sent_again_as_it_now_is(server, like, token, unique):
    grace, ada, linus = unique("grace"), unique("ada"), unique("linus")
    stream = open_stream(server, token(grace))
    try:
        post = like(grace, ada)
        first = stream.next_event()
        like(grace, linus, post)
        second = stream.next_event()

        assert second["id"] == first["id"] and second["event_id"] != first["event_id"]
        assert (second["type"], second["object"], second["actors"], second["actor_count"]) == \
            ("post_liked", post, [linus, ada], 2)
    finally:
        stream.close()


def test_a_client_that_reconnects_with_last_event_id_gets_what_it_missed(server, like, token, unique):
    grace = unique("grace")
    stream = open_stream(server, token(grace))
    try:
        like(grace, unique("ada"))
        seen = stream.next_event()
    finally:
        stream.close()
    missed = [like(grace, unique(f"m{i}")) for i in range(3)]

    again = open_stream(server, token(grace), last_event_id=seen["event_id"])
    try:
        caught_up = [again.next_event()["object"] for _ in missed]
    finally:
        again.close()

    assert caught_up == missed


def test_open_streams_do_not_starve_ordinary_requests(server, token, unique):
    # One gunicorn worker process: with a sync worker the first stream would hold it.
    streams = [open_stream(server, token(unique(f"s{i}"))) for i in range(25)]
    try:
        response = requests.get(f"{server}/v1/notifications/unread-count",
                                headers={"Authorization": f"Bearer {token(unique('grace'))}"}, timeout=5)
        assert response.status_code == 200
        assert response.json() == {"count": 0}
    finally:
        for stream in streams:
            stream.close()


def test_a_last_event_id_the_stream_never_sent_is_refused(server, token, unique):
    response = requests.get(f"{server}/v1/notifications/stream", timeout=5,
                            headers={"Authorization": f"Bearer {token(unique('grace'))}",
                                     "Last-Event-ID": "yesterday"})

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_last_event_id"


def test_the_stream_needs_a_token(server):
    response = requests.get(f"{server}/v1/notifications/stream", timeout=5)

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"


# The header is read by the stream itself: any id it could not have given is
# invalid_last_event_id. The query parameter is first checked by its schema (ASCII digits, at
# most 20 each side: validation_failed naming it), then by the stream as the header.
@pytest.mark.parametrize("last_event_id, query_code", [("99999999999999999999-0", "invalid_last_event_id"),
                                                       ("0-18446744073709551616", "invalid_last_event_id"),
                                                       ("\u0661\u0662-0", "validation_failed")])
def test_a_last_event_id_redis_could_not_have_given_is_refused_before_streaming(server, token, unique,
                                                                                last_event_id, query_code):
    header = requests.get(f"{server}/v1/notifications/stream", timeout=5, headers={
        "Authorization": f"Bearer {token(unique('grace'))}", "Last-Event-ID": last_event_id.encode()})
    query = requests.get(f"{server}/v1/notifications/stream", timeout=5, params={"last_event_id": last_event_id},
                         headers={"Authorization": f"Bearer {token(unique('grace'))}"})

    for response, code in ((header, "invalid_last_event_id"), (query, query_code)):
        assert response.status_code == 422
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == code
    if query_code == "validation_failed":
        assert list(query.json()["errors"]) == ["last_event_id"]


def test_the_largest_last_event_id_redis_can_give_is_accepted(server, token, unique):
    stream = open_stream(server, token(unique("grace")), last_event_id="18446744073709551615-18446744073709551615")
    try:
        assert stream.response.status_code == 200
        assert next(line for line in stream.lines if line.startswith(":")) == ": connected"
    finally:
        stream.close()


def ended(stream: EventStream, within: float) -> bool:
    """Whether the server ends ``stream`` within ``within`` seconds (keep-alives come every 5 s)."""
    deadline = time.monotonic() + within
    try:
        for line in stream.lines:
            if line.startswith(": closed"):
                return True
            if time.monotonic() > deadline:
                return False
    except requests.RequestException:
        return False
    return True


@pytest.fixture(scope="module")
def second_server(settings, workers):
    with gunicorn("notifications", settings, workers=1) as base:
        yield base


def test_a_sixth_stream_of_a_member_closes_their_oldest_even_in_another_process(
        server, second_server, like, token, unique):
    grace = unique("grace")
    oldest = open_stream(server, token(grace))
    assert oldest.response.status_code == 200
    others = [open_stream(server if i % 2 else second_server, token(grace)) for i in range(5)]
    try:
        assert ended(oldest, within=8), "the oldest stream stayed open"

        post = like(grace, unique("ada"))
        assert [s.next_event()["object"] for s in others] == [post] * 5
    finally:
        for stream in [oldest, *others]:
            stream.close()


def test_open_streams_share_a_few_store_connections_and_let_them_go_when_closed(settings, workers, token, unique):
    store_port = int(settings.store_url("notifications").rsplit(":", 1)[1].split("/")[0])
    with served("notifications", settings, workers=1) as (base, pid):
        before = store_connections(pid, store_port)
        streams = [open_stream(base, token(unique(f"s{i}"))) for i in range(40)]
        try:
            assert all(s.response.status_code == 200 for s in streams)
            time.sleep(0.5)
            during = store_connections(pid, store_port)
        finally:
            for stream in streams:
                stream.close()
        time.sleep(6)  # each stream notices its client left at its next keep-alive
        after = store_connections(pid, store_port)

    print(f"store connections: {before} before, {during} with 40 streams open, {after} after")
    assert during <= before + 12
    assert after <= before + 12


# --- stream tickets: how a browser's EventSource, which cannot send Authorization, opens the stream

@pytest.fixture(scope="module")
def store(settings):
    client = store_client.connect(settings.store_url("notifications"))
    yield client
    client.close()


def issue_ticket(base: str, token: str) -> requests.Response:
    return requests.post(f"{base}/v1/notifications/stream-ticket", headers={"Authorization": f"Bearer {token}"},
                         timeout=5)


def assert_problem(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_a_stream_ticket_opens_its_members_stream_without_an_authorization_header(server, like, token, store,
                                                                                  unique):
    grace, ada = unique("grace"), unique("ada")
    issued = issue_ticket(server, token(grace))
    assert issued.status_code == 201
    ticket = issued.json()["ticket"]
    assert issued.headers["Location"] == f"/v1/notifications/stream?ticket={ticket}"
    assert 0 < parse_rfc3339(issued.json()["expires_at"]) - now_ms() <= 60_000
    assert 0 < store.ttl(keys.stream_ticket(ticket)) <= 60

    stream = open_stream(server, None, ticket=ticket)
    try:
        assert stream.response.status_code == 200
        post = like(grace, ada)
        event = stream.next_event()
        assert (event["type"], event["actors"], event["object"]) == ("post_liked", [ada], post)
    finally:
        stream.close()


def test_a_stream_ticket_opens_one_stream_only(server, token, unique):
    ticket = issue_ticket(server, token(unique("grace"))).json()["ticket"]
    first = open_stream(server, None, ticket=ticket)
    try:
        assert first.response.status_code == 200
    finally:
        first.close()

    again = requests.get(f"{server}/v1/notifications/stream", params={"ticket": ticket}, timeout=5)

    assert_problem(again, 401, "invalid_stream_ticket")


def test_a_stream_ticket_past_its_time_is_refused(server, store, unique):
    ticket, _ = live.issue_ticket(store, unique("grace"), ttl_seconds=1)
    time.sleep(1.5)

    response = requests.get(f"{server}/v1/notifications/stream", params={"ticket": ticket}, timeout=5)

    assert_problem(response, 401, "invalid_stream_ticket")


@pytest.mark.parametrize("ticket", ["", "not-a-ticket", "A" * 43, "x" * 2000])
def test_a_ticket_never_issued_is_refused(server, ticket):
    response = requests.get(f"{server}/v1/notifications/stream", params={"ticket": ticket}, timeout=5)

    assert_problem(response, 401, "invalid_stream_ticket")


def test_a_stream_ticket_lives_as_long_as_the_setting_says(settings, store, unique):
    app = create_app({"TESTING": True}, settings=settings.replace(stream_ticket_ttl_seconds=7))
    issued = app.test_client().post("/v1/notifications/stream-ticket", headers={
        "Authorization": f"Bearer {mint_token(unique('grace'), settings.jwt_secret)}"})

    assert issued.status_code == 201
    assert 5 <= store.ttl(keys.stream_ticket(issued.get_json()["ticket"])) <= 7
    assert 6_000 < parse_rfc3339(issued.get_json()["expires_at"]) - now_ms() <= 7_000


def test_a_stream_ticket_is_issued_only_to_an_authenticated_member(server):
    assert_problem(requests.post(f"{server}/v1/notifications/stream-ticket", timeout=5), 401, "missing_token")


def test_a_stream_ticket_opens_nothing_but_the_stream(server, token, unique):
    grace = unique("grace")
    ticket = issue_ticket(server, token(grace)).json()["ticket"]

    as_parameter = requests.get(f"{server}/v1/notifications", params={"ticket": ticket}, timeout=5)
    as_bearer = [requests.get(f"{server}{path}", headers={"Authorization": f"Bearer {ticket}"}, timeout=5)
                 for path in ("/v1/notifications", "/v1/notifications/stream")]

    assert_problem(as_parameter, 401, "missing_token")
    for response in as_bearer:
        assert_problem(response, 401, "invalid_token")
    # Refused elsewhere, it was not used up: it still opens the stream.
    stream = open_stream(server, None, ticket=ticket)
    try:
        assert stream.response.status_code == 200
    finally:
        stream.close()


@pytest.mark.parametrize("name", ["access_token", "token", "Access_Token"])
@pytest.mark.parametrize("path", ["/v1/notifications/stream", "/v1/notifications", "/v1/notifications/unread-count"])
def test_a_bearer_token_in_the_url_is_refused_even_beside_a_valid_header(server, token, unique, name, path):
    member_token = token(unique("grace"))
    in_url_only = requests.get(f"{server}{path}", params={name: member_token}, timeout=5)
    beside_header = requests.get(f"{server}{path}", params={name: member_token}, timeout=5,
                                 headers={"Authorization": f"Bearer {member_token}"})

    assert_problem(in_url_only, 401, "token_in_url")
    assert_problem(beside_header, 401, "token_in_url")
