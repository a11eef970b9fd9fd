"""Posts through the feed's HTTP API: who may see, delete, reshare, like and comment on what.

Relationships reach the feed as events: the tests publish follows.events and
connections.events themselves (the other services are not involved).
"""
from __future__ import annotations

import uuid

import pytest

from shared.events import new_event
from tests.support.infra import EventPublisher, eventually, events_of, read_topic, next_version

T0 = "2026-01-01T00:00:00.000Z"


@pytest.fixture(scope="module")
def feed(apps, workers):
    workers("feed")
    return apps("feed")


@pytest.fixture(scope="module")
def publish_events(settings):
    publisher = EventPublisher(settings)
    yield publisher
    publisher.close()


def connected(a, b):
    """What the connections and follows services publish when ``a`` and ``b`` connect."""
    return [new_event("connections", "invitation.accepted", {"invitation_id": uuid.uuid4().hex, "inviter": a,
                                                             "invitee": b, "at": T0, "version": next_version()}),
            new_event("follows", "follow.created", {"follower": a, "followee": b, "reason": "connection",
                                                    "since": T0, "version": next_version()}),
            new_event("follows", "follow.created", {"follower": b, "followee": a, "reason": "connection",
                                                    "since": T0, "version": next_version()})]


def write(feed, auth, member, text="hello", visibility="public", **extra):
    response = feed.post("/v1/posts", json={"text": text, "visibility": visibility, **extra}, headers=auth(member))
    assert response.status_code == 201, response.json
    return response.json


def problem(response, status, code):
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == code, response.json
    return response.json


def test_a_post_is_published_and_read_back(feed, auth, unique):
    ada = unique("ada")

    post = write(feed, auth, ada, "First words")

    assert post["author"] == ada and post["text"] == "First words" and post["visibility"] == "public"
    assert (post["likes"], post["comments"], post["reshares"], post["liked_by_me"], post["reshare_of"]) \
        == (0, 0, 0, False, None)
    assert feed.get(f"/v1/posts/{post['id']}", headers=auth(unique("linus"))).json == post


@pytest.mark.parametrize("body, field", [
    ({}, "text"),
    ({"text": ""}, "text"),
    ({"text": "   "}, "text"),
    ({"text": "x" * 3001}, "text"),
    ({"text": "hi", "visibility": "friends"}, "visibility"),
    ({"text": "hi", "mood": "happy"}, "mood"),
])
def test_a_bad_post_is_refused_and_nothing_is_written(feed, auth, unique, body, field):
    ada = unique("ada")

    response = feed.post("/v1/posts", json=body, headers=auth(ada))

    assert field in problem(response, 422, "validation_failed")["errors"]
    assert feed.get(f"/v1/members/{ada}/posts", headers=auth(ada)).json["items"] == []


def test_bad_requests_get_problems_not_500s(feed, auth, unique):
    ada = unique("ada")
    problem(feed.get("/v1/posts/nonsense", headers=auth(ada)), 404, "post_not_found")
    problem(feed.get(f"/v1/posts/{ada}~zzzz", headers=auth(ada)), 404, "post_not_found")
    problem(feed.get("/v1/feed?limit=0", headers=auth(ada)), 422, "validation_failed")
    problem(feed.get("/v1/feed?cursor=%%%", headers=auth(ada)), 422, "invalid_cursor")
    problem(feed.get("/v1/members/not%20a%20member/posts", headers=auth(ada)), 422, "invalid_member_id")
    problem(feed.get("/v1/feed"), 401, "missing_token")
    problem(feed.post("/v1/posts", data="{", content_type="application/json", headers=auth(ada)), 400,
            "malformed_body")


def wake_up(listening, timeout: float = 5.0):
    """The next message on ``listening``'s channel (its subscription's confirmation skipped)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = listening.get_message(timeout=0.5)
        if message is not None:
            return message["data"]
    return None


def test_a_post_wakes_the_relays_in_the_transaction_that_stores_it(feed, settings, auth, unique):
    # The wake-up (a PUBLISH) leaves in the post's own MULTI/EXEC: three round trips in all,
    # the write limits (with the caller's entry), that EXEC, the author's own timeline.
    from shared.bus.outbox import Outbox
    from tests.support.trips import app_clients, round_trips

    ada = unique("ada")
    store = feed.application.extensions["rapport.store"]
    listening = store.pubsub(ignore_subscribe_messages=True)
    listening.subscribe(Outbox("feed", settings).wake_channel)
    assert feed.post("/v1/posts", json={"text": "first"}, headers=auth(ada)).status_code == 201  # all warm
    assert wake_up(listening) == "1"
    answers = []
    clients = [*app_clients(feed), feed.application.extensions["feed.timelines"].cache]

    trips = round_trips(clients, lambda: answers.append(
        feed.post("/v1/posts", json={"text": "second"}, headers=auth(ada)).status_code))

    assert answers == [201]
    assert trips == 3
    woken = wake_up(listening)
    listening.close()
    assert woken == "1"


def test_a_3000_character_post_is_accepted(feed, auth, unique):
    assert len(write(feed, auth, unique("ada"), "x" * 3000)["text"]) == 3000


def test_a_repeated_idempotency_key_returns_the_first_post(feed, auth, unique):
    ada = unique("ada")
    headers = {**auth(ada), "Idempotency-Key": "k1"}

    first = feed.post("/v1/posts", json={"text": "once"}, headers=headers)
    second = feed.post("/v1/posts", json={"text": "once"}, headers=headers)

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json == second.json
    assert len(feed.get(f"/v1/members/{ada}/posts", headers=auth(ada)).json["items"]) == 1


def test_a_connections_only_post_is_seen_by_connections_and_hidden_from_others(feed, auth, unique,
                                                                               publish_events):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    post = write(feed, auth, ada, "for my network", "connections")
    publish_events(*connected(ada, grace))

    eventually(lambda: feed.get(f"/v1/posts/{post['id']}", headers=auth(grace)).status_code == 200,
               message="the connection sees the post")
    problem(feed.get(f"/v1/posts/{post['id']}", headers=auth(linus)), 404, "post_not_found")
    assert feed.get(f"/v1/members/{ada}/posts", headers=auth(linus)).json["items"] == []
    assert [p["id"] for p in feed.get(f"/v1/members/{ada}/posts", headers=auth(grace)).json["items"]] \
        == [post["id"]]
    # Nor can a stranger act on it: its existence must not leak.
    problem(feed.put(f"/v1/posts/{post['id']}/like", headers=auth(linus)), 404, "post_not_found")
    problem(feed.post(f"/v1/posts/{post['id']}/comments", json={"text": "hi"}, headers=auth(linus)), 404,
            "post_not_found")


def test_only_the_author_deletes_and_a_deleted_post_is_gone(feed, auth, unique, settings):
    ada, grace = unique("ada"), unique("grace")
    post = write(feed, auth, ada)

    problem(feed.delete(f"/v1/posts/{post['id']}", headers=auth(grace)), 403, "not_post_author")
    assert feed.delete(f"/v1/posts/{post['id']}", headers=auth(ada)).status_code == 204

    problem(feed.get(f"/v1/posts/{post['id']}", headers=auth(ada)), 404, "post_not_found")
    problem(feed.get(f"/v1/posts/{post['id']}", headers=auth(grace)), 404, "post_not_found")
    problem(feed.delete(f"/v1/posts/{post['id']}", headers=auth(ada)), 404, "post_not_found")
    assert feed.get(f"/v1/members/{ada}/posts", headers=auth(ada)).json["items"] == []
    read_topic(settings, "feed.events", lambda evs: events_of(evs, "post.deleted", post_id=post["id"]))


def test_a_public_post_can_be_reshared_and_the_event_names_its_author(feed, auth, unique, settings):
    ada, grace = unique("ada"), unique("grace")
    original = write(feed, auth, ada, "worth sharing")

    reshare = write(feed, auth, grace, "look at this", reshare_of=original["id"])

    assert reshare["reshare_of"] == original["id"]
    assert feed.get(f"/v1/posts/{original['id']}", headers=auth(grace)).json["reshares"] == 1
    bare = feed.post("/v1/posts", json={"reshare_of": original["id"]}, headers=auth(unique("linus")))
    assert bare.status_code == 201 and bare.json["text"] == ""
    events = read_topic(settings, "feed.events", lambda evs: events_of(evs, "post.created", post_id=reshare["id"]))
    data = events_of(events, "post.created", post_id=reshare["id"])[0].data
    assert (data["reshare_of"], data["reshare_of_author"], data["excerpt"]) == (original["id"], ada, "look at this")


def test_a_reshare_of_a_connections_only_post_is_refused(feed, auth, unique, publish_events):
    ada, grace = unique("ada"), unique("grace")
    post = write(feed, auth, ada, "just us", "connections")
    publish_events(*connected(ada, grace))
    eventually(lambda: feed.get(f"/v1/posts/{post['id']}", headers=auth(grace)).status_code == 200)

    response = feed.post("/v1/posts", json={"text": "look", "reshare_of": post["id"]}, headers=auth(grace))

    problem(response, 422, "reshare_not_allowed")
    assert feed.get(f"/v1/members/{grace}/posts", headers=auth(grace)).json["items"] == []
    assert feed.get(f"/v1/posts/{post['id']}", headers=auth(ada)).json["reshares"] == 0
    problem(feed.post("/v1/posts", json={"reshare_of": f"{ada}~nothere"}, headers=auth(grace)), 422,
            "reshared_post_not_found")


def test_a_like_counts_once_and_unlike_takes_it_back(feed, auth, unique, settings):
    ada, grace = unique("ada"), unique("grace")
    post = write(feed, auth, ada)
    url = f"/v1/posts/{post['id']}"

    assert [feed.put(f"{url}/like", headers=auth(grace)).status_code for _ in range(2)] == [204, 204]
    seen = feed.get(url, headers=auth(grace)).json
    assert (seen["likes"], seen["liked_by_me"]) == (1, True)
    assert feed.get(url, headers=auth(ada)).json["liked_by_me"] is False

    assert [feed.delete(f"{url}/like", headers=auth(grace)).status_code for _ in range(2)] == [204, 204]
    assert feed.get(url, headers=auth(grace)).json["likes"] == 0
    events = read_topic(settings, "feed.events", lambda evs: events_of(evs, "post.unliked", post_id=post["id"]))
    assert len(events_of(events, "post.liked", post_id=post["id"], actor=grace, author=ada)) == 1
    assert len(events_of(events, "post.unliked", post_id=post["id"])) == 1


def test_comments_are_counted_and_paged_newest_first(feed, auth, unique, settings):
    ada, grace = unique("ada"), unique("grace")
    post = write(feed, auth, ada)
    url = f"/v1/posts/{post['id']}/comments"

    made = [feed.post(url, json={"text": f"comment {i}"}, headers=auth(grace)) for i in range(3)]

    assert [r.status_code for r in made] == [201] * 3
    assert made[0].json["author"] == grace and made[0].json["post_id"] == post["id"]
    first = feed.get(f"{url}?limit=2", headers=auth(ada)).json
    rest = feed.get(f"{url}?limit=2&cursor={first['next_cursor']}", headers=auth(ada)).json
    assert [c["text"] for c in first["items"] + rest["items"]] == ["comment 2", "comment 1", "comment 0"]
    assert rest["next_cursor"] is None
    assert feed.get(f"/v1/posts/{post['id']}", headers=auth(ada)).json["comments"] == 3
    problem(feed.post(url, json={"text": "x" * 1251}, headers=auth(grace)), 422, "validation_failed")
    assert feed.post(url, json={"text": "x" * 1250}, headers=auth(grace)).status_code == 201
    read_topic(settings, "feed.events", lambda evs: events_of(evs, "comment.added", post_id=post["id"],
                                                              commenter=grace, author=ada))
