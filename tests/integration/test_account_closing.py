"""Closing an account: on ``member.closed`` every service erases what it holds of the member.

The member's network is built through the services' HTTP APIs and their real workers (Kafka,
Redis); the account is closed by publishing ``member.closed`` on profiles.events, as the
profiles service's relay does. Then every store database and the timeline cache is scanned,
keys and values, for the closed id: nothing may be left but what ``STAYS`` names.
"""
from __future__ import annotations

import re

import pytest

from shared import store_client
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from tests.support.infra import EventPublisher, eventually

SERVICES = ("connections", "follows", "feed", "notifications")

# What may still name a closed member after the erasure, and why (docs/api.md, "Closing an
# account"): each pattern is matched against a key that names them or holds a value naming them.
STAYS = {
    # The replica's tombstone: the id stays closed for good (it may not register again), and
    # every service answers 404 for it without asking anybody.
    "member replica tombstone": re.compile(r"^(connections|follows|feed|notifications|messaging):\{s\d+\}:member:"),
    # Messaging's mark of a closed account: its list is gone and stays gone (no later message
    # recreates it), and others' conversations show the member's messages as a former member's.
    "messaging closed mark": re.compile(r"^messaging:\{s\d+\}:closed:"),
    # The consumers' dedup markers of the member's own events (the member.closed among them), keyed
    # by the event's key: they keep a redelivered event from applying twice, and expire.
    "consumer dedup markers": re.compile(r"^dedup:"),
    # The outbox streams hold the events the member's own acts emitted until the relay has them
    # acknowledged by Kafka and deletes them; Kafka's retention ends the topic copies.
    "outbox stream entries": re.compile(r"^outbox:"),
}


def _holds(store, key: str, member: str) -> bool:
    """Whether the value at ``key`` names ``member`` (read according to its type)."""
    kind = store.type(key)
    if kind == "string":
        values = [store.get(key) or ""]
    elif kind == "hash":
        values = [f"{f}={v}" for f, v in store.hgetall(key).items()]
    elif kind == "set":
        values = list(store.smembers(key))
    elif kind == "zset":
        values = list(store.zrange(key, 0, -1))
    elif kind == "list":
        values = list(store.lrange(key, 0, -1))
    elif kind == "stream":
        values = [f"{f}={v}" for _, entry in store.xrange(key) for f, v in entry.items()]
    else:
        values = []
    return any(member in value for value in values)


def _left(stores: dict, member: str) -> list[tuple[str, str]]:
    """(database, key) of every key naming ``member`` in its name or value that STAYS does not allow."""
    left = []
    for name, store in stores.items():
        for key in store.scan_iter(count=1000):
            if (member in key or _holds(store, key, member)) and not any(p.match(key) for p in STAYS.values()):
                left.append((name, key))
    return sorted(left)


@pytest.fixture
def stores(settings):
    found = {s: store_client.connect(settings.store_url(s), decode_responses=True) for s in SERVICES}
    found["timeline cache"] = store_client.connect(settings.cache_url, decode_responses=True)
    return found


def test_closing_an_account_erases_it_from_every_store_and_the_timeline_cache(
        settings, workers, apps, auth, unique, connect, stores):
    for service in SERVICES + ("messaging",):  # messaging shares a database with notifications here
        workers(service)
    conn, follows, feed, notes = (apps(s) for s in SERVICES)
    closer = unique("closer")
    ada, bob, cy, dee, eve, fay, gus = (unique(n) for n in ("ada", "bob", "cy", "dee", "eve", "fay", "gus"))

    # Connections, an introduction through one of them, invitations both ways, endorsements
    # both ways, blocks both ways.
    connect(closer, ada)
    connect(closer, bob)
    connect(ada, dee)
    intro = conn.post("/v1/introductions", json={"target": dee, "via": ada}, headers=auth(closer))
    assert intro.status_code == 201, intro.get_json()
    assert conn.post("/v1/invitations", json={"invitee": cy}, headers=auth(closer)).status_code == 201
    assert conn.post("/v1/invitations", json={"invitee": closer}, headers=auth(eve)).status_code == 201
    for endorser, endorsee in ((closer, ada), (dee, ada), (ada, closer)):
        response = conn.post(f"/v1/members/{endorsee}/endorsements", json={"skill": "Compilers"}, headers=auth(endorser))
        assert response.status_code == 201, response.get_json()
    assert conn.put(f"/v1/blocks/{fay}", headers=auth(closer)).status_code == 204
    assert conn.put(f"/v1/blocks/{closer}", headers=auth(gus)).status_code == 204

    # Follows both ways; cy's timeline exists (a read builds it), so the closer's post fans out to it.
    assert follows.put(f"/v1/following/{dee}", headers=auth(closer)).status_code == 201
    assert follows.put(f"/v1/following/{closer}", headers=auth(cy)).status_code == 201
    eventually(lambda: feed.get("/v1/feed", headers=auth(cy)).status_code == 200, message="cy reads a feed")
    eventually(lambda: stores["feed"].zscore(f"feed:{_tag(settings, closer)}:followers:{closer}", cy) is not None,
               20, message="the feed's audience replica learns cy follows the closer")
    post = feed.post("/v1/posts", json={"text": "before I go", "visibility": "public"}, headers=auth(closer))
    assert post.status_code == 201, post.get_json()
    own_post = post.get_json()["id"]
    eventually(lambda: own_post in [p["id"] for p in feed.get("/v1/feed", headers=auth(cy)).get_json()["items"]],
               20, message="the closer's post reaches cy's timeline")

    # Likes and a comment on someone else's post: ada's post, liked by the closer and bob.
    theirs = feed.post("/v1/posts", json={"text": "a post of ada", "visibility": "public"}, headers=auth(ada))
    ada_post = theirs.get_json()["id"]
    for liker in (closer, bob):
        assert feed.put(f"/v1/posts/{ada_post}/like", headers=auth(liker)).status_code == 204
    assert feed.post(f"/v1/posts/{ada_post}/comments", json={"text": "well put"}, headers=auth(closer)).status_code == 201

    def liked_group():
        items = notes.get("/v1/notifications", headers=auth(ada)).get_json()["items"]
        return next((n for n in items if n["type"] == "post_liked" and n["actor_count"] == 2), None)
    eventually(liked_group, 30, message="ada's grouped post_liked notification has both likers")
    eventually(lambda: notes.get("/v1/notifications", headers=auth(closer)).get_json()["items"], 30,
               message="the closer has notifications")
    assert _left(stores, closer), "the scan sees the member before the erasure"
    before = {"ada connections": _count(conn, auth, ada), "dee followers": _followers(follows, auth, dee)}

    publish = EventPublisher(settings)
    try:
        publish(new_event("profiles", "member.closed", {"member": closer, "at": rfc3339(now_ms()), "version": 99}))
    finally:
        publish.close()

    _erased(stores, closer)
    assert _count(conn, auth, ada) == before["ada connections"] - 1
    assert _followers(follows, auth, dee) == before["dee followers"] - 1
    shown = feed.get(f"/v1/posts/{ada_post}", headers=auth(ada)).get_json()
    assert (shown["likes"], shown["comments"]) == (1, 0)
    group = next(n for n in notes.get("/v1/notifications", headers=auth(ada)).get_json()["items"]
                 if n["type"] == "post_liked")
    assert (group["actor_count"], group["actors"]) == (1, [bob])
    endorsements = conn.get(f"/v1/members/{ada}/endorsements", headers=auth(ada)).get_json()
    assert closer not in str(endorsements) and "1" in str(endorsements), endorsements


def test_a_retried_member_closed_drops_no_count_twice(settings, workers, apps, auth, unique, connect, stores):
    for service in ("connections", "feed", "follows"):
        workers(service)
    conn, feed, follows = apps("connections"), apps("feed"), apps("follows")
    closer, ada, bob = unique("closer"), unique("ada"), unique("bob")
    connect(ada, bob)
    connect(closer, ada)
    assert follows.put(f"/v1/following/{ada}", headers=auth(closer)).status_code == 201
    post = feed.post("/v1/posts", json={"text": "a post of ada", "visibility": "public"}, headers=auth(ada)).get_json()["id"]
    for liker in (closer, bob):
        assert feed.put(f"/v1/posts/{post}/like", headers=auth(liker)).status_code == 204
    for endorser in (closer, bob):
        assert conn.post(f"/v1/members/{ada}/endorsements", json={"skill": "Rust"},
                         headers=auth(endorser)).status_code == 201
    eventually(lambda: _followers(follows, auth, ada) >= 2, 20, message="ada's followers projected")

    closed = new_event("profiles", "member.closed", {"member": closer, "at": rfc3339(now_ms()), "version": 7})
    publish = EventPublisher(settings)
    try:
        publish(closed)
        _erased(stores, closer)
        followers = _followers(follows, auth, ada)
        retry = new_event("profiles", "member.closed", closed.data)  # a retry under a new event id
        publish(closed, retry)  # the same event again, then the retry (one partition: in order)
        _handled(stores, retry)
    finally:
        publish.close()
    assert feed.get(f"/v1/posts/{post}", headers=auth(ada)).get_json()["likes"] == 1
    assert _count(conn, auth, ada) == 1
    assert _followers(follows, auth, ada) == followers
    skills = stores["connections"].zrange(f"connections:{_tag(settings, ada)}:endorsement-skills:{ada}", 0, -1,
                                          withscores=True)
    assert skills == [("rust", 1.0)], skills


def _erased(stores, member: str, timeout: float = 60) -> None:
    """Wait until the scan finds nothing of ``member`` left; else fail naming what is left."""
    try:
        eventually(lambda: not _left(stores, member), timeout, interval=0.5, message="every store erased the member")
    except AssertionError:
        pass
    left = _left(stores, member)
    assert not left, "left behind:\n" + "\n".join(f"{db}: {key}" for db, key in left)


def _handled(stores, event) -> None:
    """Wait until the member consumers of connections, feed and follows have handled ``event``
    (their dedup marker of it is written in the same transaction as its effects)."""
    for service in ("connections", "feed", "follows"):
        eventually(lambda: list(stores[service].scan_iter(match=f"dedup:*{service}.members:*{event.id}")), 30,
                   interval=0.2, message=f"{service} handled the retried member.closed")


def _tag(settings, member: str) -> str:
    from shared.slots import tag
    return tag(member, settings.shards)


def _count(conn, auth, member: str) -> int:
    return conn.get(f"/v1/members/{member}/connections/count", headers=auth(member)).get_json()["count"]


def _followers(follows, auth, member: str) -> int:
    return follows.get(f"/v1/members/{member}/follow-stats", headers=auth(member)).get_json()["followers"]
