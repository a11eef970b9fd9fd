"""``Idempotency-Key`` on the feed's creating POSTs, against the real Redis: a repeat gets the first
answer, a key in use or reused is refused, and a request that died mid-way never posts twice."""
from __future__ import annotations

import threading
import time

import pytest

from services.feed.app import create_app

PENDING_SECONDS = 1  # request_timeout_seconds of these apps: how long a dead request holds its key


@pytest.fixture
def feed(settings):
    return create_app({"TESTING": True}, settings=settings.replace(request_timeout_seconds=PENDING_SECONDS))


def key(unique):
    return {"Idempotency-Key": unique("key")}


def own_posts(client, auth, member):
    return [p["id"] for p in client.get(f"/v1/members/{member}/posts", headers=auth(member)).json["items"]]


def in_background(call) -> threading.Thread:
    """Run ``call`` in a thread; a ``SystemExit`` (a worker killed there) ends only that thread."""
    def run():
        try:
            call()
        except SystemExit:
            pass
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class Stall:
    """Makes the feed app's requests stop after their write, as if their worker died there."""

    def __init__(self, app, monkeypatch):
        self.release = threading.Event()
        self.reached = threading.Event()
        timelines = app.extensions["feed.timelines"]
        real = timelines.show_own_post

        def stalled(post):
            self.reached.set()
            self.release.wait(30)
            real(post)

        monkeypatch.setattr(timelines, "show_own_post", stalled)
        self.restore = lambda: monkeypatch.setattr(timelines, "show_own_post", real)

    def start(self, call) -> threading.Thread:
        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        assert self.reached.wait(10), "the request never reached its write"
        return thread


def test_a_repeat_with_the_same_key_gets_the_first_answer(feed, auth, unique):
    client, ada, headers = feed.test_client(), unique("ada"), {**auth(unique("ada")), **key(unique)}

    first = client.post("/v1/posts", json={"text": "once"}, headers=headers)
    again = client.post("/v1/posts", json={"text": "once"}, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json


def test_a_key_reused_with_another_body_is_refused(feed, auth, unique):
    client, headers = feed.test_client(), {**auth(unique("ada")), **key(unique)}
    assert client.post("/v1/posts", json={"text": "one"}, headers=headers).status_code == 201

    reused = client.post("/v1/posts", json={"text": "another"}, headers=headers)

    assert reused.status_code == 422
    assert reused.mimetype == "application/problem+json"
    assert reused.json["code"] == "idempotency_key_reused"


def test_a_repeat_while_the_first_is_being_served_is_refused(feed, auth, unique, monkeypatch):
    from services.feed import posts

    client, headers = feed.test_client(), {**auth(unique("ada")), **key(unique)}
    entered, release = threading.Event(), threading.Event()
    real = posts.publish

    def slow_publish(*args, **kwargs):
        entered.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(posts, "publish", slow_publish)
    first = threading.Thread(target=lambda: feed.test_client().post("/v1/posts", json={"text": "slow"},
                                                                    headers=headers), daemon=True)
    first.start()
    assert entered.wait(10)
    try:
        in_use = client.post("/v1/posts", json={"text": "slow"}, headers=headers)
    finally:
        release.set()
        first.join(10)

    assert in_use.status_code == 409
    assert in_use.mimetype == "application/problem+json"
    assert in_use.json["code"] == "idempotency_key_in_use"
    assert 1 <= int(in_use.headers["Retry-After"]) <= PENDING_SECONDS


def test_a_request_that_died_after_its_write_is_answered_on_retry_without_a_second_post(
        feed, auth, unique, monkeypatch):
    ada = unique("ada")
    headers = {**auth(ada), **key(unique)}
    stall = Stall(feed, monkeypatch)
    stall.start(lambda: feed.test_client().post("/v1/posts", json={"text": "made once"}, headers=headers))
    stall.restore()  # the stalled request stays stuck: its worker is as good as dead
    written = own_posts(feed.test_client(), auth, ada)
    assert len(written) == 1
    time.sleep(PENDING_SECONDS + 0.5)  # the dead request's key is no longer held

    retry = feed.test_client().post("/v1/posts", json={"text": "made once"}, headers=headers)
    again = feed.test_client().post("/v1/posts", json={"text": "made once"}, headers=headers)

    stall.release.set()
    assert retry.status_code == 201, retry.json
    assert retry.json["id"] == written[0] and retry.json["text"] == "made once"
    assert again.json == retry.json
    assert own_posts(feed.test_client(), auth, ada) == written


def test_a_request_that_died_before_its_write_runs_once_more_on_retry(feed, auth, unique, monkeypatch):
    from services.feed import posts

    ada = unique("ada")
    headers = {**auth(ada), **key(unique)}
    entered, release = threading.Event(), threading.Event()
    real = posts.publish

    def dies_before_writing(*args, **kwargs):
        entered.set()
        release.wait(30)
        raise SystemExit  # what is left of a killed worker: nothing after this point runs

    monkeypatch.setattr(posts, "publish", dies_before_writing)
    in_background(lambda: feed.test_client().post("/v1/posts", json={"text": "late"}, headers=headers))
    assert entered.wait(10)
    monkeypatch.setattr(posts, "publish", real)
    time.sleep(PENDING_SECONDS + 0.5)

    retry = feed.test_client().post("/v1/posts", json={"text": "late"}, headers=headers)

    release.set()
    assert retry.status_code == 201, retry.json
    assert own_posts(feed.test_client(), auth, ada) == [retry.json["id"]]


def test_a_comment_whose_request_died_after_its_write_is_answered_on_retry(feed, auth, unique, monkeypatch):
    from services.feed import posts

    ada = unique("ada")
    client = feed.test_client()
    post = client.post("/v1/posts", json={"text": "hello"}, headers=auth(ada)).json["id"]
    headers = {**auth(ada), **key(unique)}
    real = posts.add_comment
    release = threading.Event()
    made = threading.Event()

    def dies_after_writing(*args, **kwargs):
        real(*args, **kwargs)
        made.set()
        release.wait(30)
        raise SystemExit

    monkeypatch.setattr(posts, "add_comment", dies_after_writing)
    in_background(lambda: feed.test_client().post(f"/v1/posts/{post}/comments", json={"text": "hi"},
                                                  headers=headers))
    assert made.wait(10)
    monkeypatch.setattr(posts, "add_comment", real)
    time.sleep(PENDING_SECONDS + 0.5)

    retry = client.post(f"/v1/posts/{post}/comments", json={"text": "hi"}, headers=headers)

    release.set()
    comments = client.get(f"/v1/posts/{post}/comments", headers=auth(ada)).json["items"]
    assert retry.status_code == 201, retry.json
    assert [c["id"] for c in comments] == [retry.json["id"]]
