"""The live stream: notifications as server-sent events, over a real HTTP connection.

The API runs under gunicorn with the gevent worker (as in production), fed by the real
notifications worker; a ``requests`` client reads the event stream.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
from kafka import KafkaProducer

from bench.support import gunicorn
from shared.auth import mint_token
from shared.clock import now_ms, rfc3339
from shared.events import encode, new_event


class EventStream:
    """A client of ``/v1/notifications/stream`` that yields parsed server-sent events."""

    def __init__(self, base: str, token: str, last_event_id: str | None = None):
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(f"{base}/v1/notifications/stream", headers=headers, stream=True,
                                     timeout=(5, 10))
        self.lines = self.response.iter_lines(chunk_size=None, decode_unicode=True)

    def next_event(self) -> dict:
        """The next ``notification`` event (comments and keep-alives skipped)."""
        fields: dict = {}
        for line in self.lines:
            if line == "":
                if fields.get("event") == "notification":
                    return {**json.loads(fields["data"]), "event_id": fields["id"]}
                fields = {}
            elif not line.startswith(":") and ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.lstrip(" ")
        raise AssertionError("the stream ended")

    def close(self):
        self.response.close()


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
    stream = EventStream(server, token(grace))
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
    stream = EventStream(server, token(grace))
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
    stream = EventStream(server, token(grace))
    try:
        like(grace, unique("ada"))
        seen = stream.next_event()
    finally:
        stream.close()
    missed = [like(grace, unique(f"m{i}")) for i in range(3)]

    again = EventStream(server, token(grace), last_event_id=seen["event_id"])
    try:
        caught_up = [again.next_event()["object"] for _ in missed]
    finally:
        again.close()

    assert caught_up == missed


def test_open_streams_do_not_starve_ordinary_requests(server, token, unique):
    # One gunicorn worker process: with a sync worker the first stream would hold it.
    streams = [EventStream(server, token(unique(f"s{i}"))) for i in range(25)]
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
