"""The conversations stream: new messages and read receipts as server-sent events, over a real
HTTP connection to the API under gunicorn (gevent, as deployed), fed by the real worker."""
from __future__ import annotations

import pytest
import requests

from bench.support import gunicorn
from shared.auth import mint_token
from tests.support.infra import eventually
from tests.support.streams import EventStream


def open_stream(base: str, token: str | None, last_event_id: str | None = None,
                ticket: str | None = None) -> EventStream:
    """A client of ``/v1/conversations/stream``: every event, with its name as ``event``."""
    return EventStream(base, "/v1/conversations/stream", token, last_event_id, ticket)


@pytest.fixture(scope="module")
def server(settings, workers):
    workers("connections")
    workers("messaging")
    with gunicorn("messaging", settings, workers=1) as base:
        yield base


@pytest.fixture
def token(settings):
    return lambda member: mint_token(member, settings.jwt_secret)


@pytest.fixture
def pair(connect, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    return ada, grace


def post(base: str, token: str, path: str, body: dict) -> requests.Response:
    return requests.post(f"{base}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_the_recipients_stream_receives_a_new_message(server, token, pair):
    ada, grace = pair
    stream = open_stream(server, token(grace))
    try:
        assert stream.response.status_code == 200
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        started = post(server, token(ada), "/v1/conversations", {"participants": [grace], "text": "Hello"})
        assert started.status_code == 201, started.json()

        event = stream.next_event()

        assert event["event"] == "message"
        assert {k: event[k] for k in ("id", "conversation_id", "sender", "text")} == \
            {k: started.json()["message"][k] for k in ("id", "conversation_id", "sender", "text")}
    finally:
        stream.close()


def test_a_read_receipt_reaches_the_senders_stream(server, token, pair):
    ada, grace = pair
    cid = post(server, token(ada), "/v1/conversations", {"participants": [grace], "text": "Hi"}).json()[
        "conversation"]["id"]
    stream = open_stream(server, token(ada))
    try:
        post(server, token(grace), f"/v1/conversations/{cid}/read", {})

        # ada's own message may reach her stream first (her other devices see it too)
        event = stream.next_event()
        if event["event"] == "message":
            assert event["sender"] == ada
            event = stream.next_event()

        assert (event["event"], event["conversation_id"], event["member"], event["read_up_to"]) == \
            ("read", cid, grace, f"{cid}-1")
    finally:
        stream.close()


def test_a_stream_resumed_with_last_event_id_gets_what_it_missed_once_each(server, token, pair):
    ada, grace = pair
    stream = open_stream(server, token(grace))
    try:
        cid = post(server, token(ada), "/v1/conversations", {"participants": [grace], "text": "m0"}).json()[
            "conversation"]["id"]
        seen = stream.next_event()
    finally:
        stream.close()
    missed = [f"m{i}" for i in range(1, 4)]
    for text in missed:
        assert post(server, token(ada), f"/v1/conversations/{cid}/messages", {"text": text}).status_code == 201

    again = open_stream(server, token(grace), last_event_id=seen["event_id"])
    try:
        caught_up = [again.next_event()["text"] for _ in missed]
        post(server, token(ada), f"/v1/conversations/{cid}/messages", {"text": "live again"})
        after = again.next_event()["text"]
    finally:
        again.close()

    assert caught_up == missed
    assert after == "live again"


def test_a_stream_ticket_opens_the_members_stream_once_without_an_authorization_header(server, token, pair):
    ada, grace = pair
    issued = requests.post(f"{server}/v1/conversations/stream-ticket", timeout=5,
                           headers={"Authorization": f"Bearer {token(grace)}"})
    assert issued.status_code == 201
    ticket = issued.json()["ticket"]
    assert issued.headers["Location"] == f"/v1/conversations/stream?ticket={ticket}"

    stream = open_stream(server, None, ticket=ticket)
    try:
        assert stream.response.status_code == 200
        post(server, token(ada), "/v1/conversations", {"participants": [grace], "text": "via ticket"})
        assert stream.next_event()["text"] == "via ticket"
    finally:
        stream.close()
    reused = requests.get(f"{server}/v1/conversations/stream", params={"ticket": ticket}, timeout=5)
    assert reused.status_code == 401 and reused.json()["code"] == "invalid_stream_ticket"


def test_a_last_event_id_the_stream_never_sent_is_refused_before_streaming(server, token, unique):
    response = requests.get(f"{server}/v1/conversations/stream", timeout=5, headers={
        "Authorization": f"Bearer {token(unique('grace'))}", "Last-Event-ID": "yesterday"})

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_last_event_id"


def test_an_idle_stream_sends_keep_alives(server, token, unique):
    stream = open_stream(server, token(unique("grace")))
    try:
        comments = []
        for line in stream.lines:
            if line.startswith(":"):
                comments.append(line)
            if ": keep-alive" in comments:
                break
        assert comments[:2] == [": connected", ": keep-alive"]
    finally:
        stream.close()



def test_a_resumed_stream_leaves_out_a_conversation_a_block_has_hidden_since(server, token, connect, apps, auth,
                                                                             unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(ada, grace)
    connect(linus, grace)
    stream = open_stream(server, token(grace))
    try:
        cid = post(server, token(ada), "/v1/conversations", {"participants": [grace], "text": "m1"}).json()[
            "conversation"]["id"]
        seen = stream.next_event()
        post(server, token(ada), f"/v1/conversations/{cid}/messages", {"text": "m2"})
        assert stream.next_event()["text"] == "m2"  # on the stream before the block
    finally:
        stream.close()
    assert apps("connections").put(f"/v1/blocks/{ada}", headers=auth(grace)).status_code == 204
    eventually(lambda: requests.get(f"{server}/v1/conversations/{cid}", timeout=5, headers={
        "Authorization": f"Bearer {token(grace)}"}).status_code == 404, message="hidden by the block")

    again = open_stream(server, token(grace), last_event_id=seen["event_id"])
    try:
        post(server, token(linus), "/v1/conversations", {"participants": [grace], "text": "from linus"})
        first = again.next_event()
    finally:
        again.close()

    assert (first["sender"], first["text"]) == (linus, "from linus")
