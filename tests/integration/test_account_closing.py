"""Closing an account: on ``member.closed`` every service erases what it holds of the member.

The member's network is built through the services' HTTP APIs and their real workers (Kafka,
Redis); the account is closed by publishing ``member.closed`` on profiles.events, as the
profiles service's relay does. Then every store database and the timeline cache is scanned,
keys and values, for the closed id: nothing may be left but what ``STAYS`` names. The erasure
itself may not SCAN (it must cost what the member touched, not the store): MONITOR on every
Redis server sees no SCAN-family command while the services handle ``member.closed``.
"""
from __future__ import annotations

import re
import threading
import uuid

import pytest

from services.messaging.store import Keys as MessagingKeys
from shared import members, store_client
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
    # The write limits' windows of the member's last writes: counters, no content, gone when
    # their window ends (a minute at most with the default limits).
    "write limit windows": re.compile(r"^[a-z]+:rate-limit:"),
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


def _network(settings, workers, apps, auth, unique, connect, stores) -> dict:
    """A member (``closer``) whose acts left something in every store: connections, past ones,
    an introduction, invitations both ways and a withdrawn one, endorsements both ways, blocks,
    follows both ways and a past one, a post fanned out, liked and commented on by others (and
    one deleted since), likes and a comment on another's post, notifications both ways, a people-you-may-know list naming
    them. Returns the members and posts the checks need."""
    for service in SERVICES + ("messaging",):  # messaging shares a database with notifications here
        workers(service)
    conn, follows, feed, notes = (apps(s) for s in SERVICES)
    closer = unique("closer")
    ada, bob, cy, dee, eve, fay, gus, hal, ivy, jon = (
        unique(n) for n in ("ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal", "ivy", "jon"))

    # Connections, one of them removed since, an introduction through one of them, invitations
    # both ways and one withdrawn (its cool-down names both), endorsements both ways, blocks both ways.
    connect(closer, ada)
    connect(closer, bob)
    connect(ada, dee)
    connect(closer, hal)
    assert conn.delete(f"/v1/connections/{hal}", headers=auth(closer)).status_code == 204
    intro = conn.post("/v1/introductions", json={"target": dee, "via": ada}, headers=auth(closer))
    assert intro.status_code == 201, intro.get_json()
    assert conn.post("/v1/invitations", json={"invitee": cy}, headers=auth(closer)).status_code == 201
    assert conn.post("/v1/invitations", json={"invitee": closer}, headers=auth(eve)).status_code == 201
    withdrawn = conn.post("/v1/invitations", json={"invitee": ivy}, headers=auth(closer)).get_json()["id"]
    assert conn.post(f"/v1/invitations/{withdrawn}/withdraw", headers=auth(closer)).status_code == 200
    for endorser, endorsee in ((closer, ada), (dee, ada), (ada, closer)):
        response = conn.post(f"/v1/members/{endorsee}/endorsements", json={"skill": "Compilers"}, headers=auth(endorser))
        assert response.status_code == 201, response.get_json()
    assert conn.put(f"/v1/blocks/{fay}", headers=auth(closer)).status_code == 204
    assert conn.put(f"/v1/blocks/{closer}", headers=auth(gus)).status_code == 204
    # dee's people-you-may-know: the closer is 2nd-degree (through ada).
    eventually(lambda: closer in str(conn.get("/v1/suggestions", headers=auth(dee)).get_json()), 20,
               message="dee's suggestions name the closer")

    # Follows both ways (cy with post alerts), and one ended (its version stays behind); cy's
    # timeline exists (a read builds it), so the closer's post fans out to it.
    assert follows.put(f"/v1/following/{dee}", headers=auth(closer)).status_code == 201
    assert follows.put(f"/v1/following/{jon}", headers=auth(closer)).status_code == 201
    assert follows.delete(f"/v1/following/{jon}", headers=auth(closer)).status_code == 204
    assert follows.put(f"/v1/following/{closer}", json={"notify_on_post": True}, headers=auth(cy)).status_code == 201
    eventually(lambda: feed.get("/v1/feed", headers=auth(cy)).status_code == 200, message="cy reads a feed")
    eventually(lambda: stores["feed"].zscore(f"feed:{_tag(settings, closer)}:followers:{closer}", cy) is not None,
               20, message="the feed's audience replica learns cy follows the closer")
    post = feed.post("/v1/posts", json={"text": "before I go", "visibility": "public"}, headers=auth(closer))
    assert post.status_code == 201, post.get_json()
    own_post = post.get_json()["id"]
    eventually(lambda: own_post in [p["id"] for p in feed.get("/v1/feed", headers=auth(cy)).get_json()["items"]],
               20, message="the closer's post reaches cy's timeline")
    # Others' like and comment on the closer's posts: their footprints name the post, also
    # when the closer deleted it before closing.
    deleted = feed.post("/v1/posts", json={"text": "second thoughts", "visibility": "public"},
                        headers=auth(closer)).get_json()["id"]
    for post_id in (own_post, deleted):
        assert feed.put(f"/v1/posts/{post_id}/like", headers=auth(bob)).status_code == 204
        assert feed.post(f"/v1/posts/{post_id}/comments", json={"text": "bye"}, headers=auth(bob)).status_code == 201
    assert feed.delete(f"/v1/posts/{deleted}", headers=auth(closer)).status_code == 204

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
    eventually(lambda: stores["notifications"].smembers(f"notifications:{_tag(settings, closer)}:post-alerts:{closer}"),
               20, message="the notifications replica learns cy's post alerts")
    return {"closer": closer, "ada": ada, "bob": bob, "dee": dee, "ada_post": ada_post}


def _close(settings, member: str, version: int = 99) -> None:
    """Publish ``member.closed`` on profiles.events, as the profiles service's relay does."""
    publish = EventPublisher(settings)
    try:
        publish(new_event("profiles", "member.closed", {"member": member, "at": rfc3339(now_ms()), "version": version}))
    finally:
        publish.close()


def test_closing_an_account_erases_it_from_every_store_and_the_timeline_cache(
        settings, workers, apps, auth, unique, connect, stores):
    net = _network(settings, workers, apps, auth, unique, connect, stores)
    conn, follows, feed, notes = (apps(s) for s in SERVICES)
    closer, ada, bob, dee, ada_post = (net[k] for k in ("closer", "ada", "bob", "dee", "ada_post"))
    assert _left(stores, closer), "the scan sees the member before the erasure"
    before = {"ada connections": _count(conn, auth, ada), "dee followers": _followers(follows, auth, dee)}

    _close(settings, closer)

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


class _Monitor:
    """Every command one Redis server runs while it is open (MONITOR), in order."""

    def __init__(self, client):
        self._client, self.commands = client, []
        self._marker = f"end-of-monitor-{uuid.uuid4().hex}"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "MONITOR started"

    def _listen(self):
        with self._client.monitor() as monitor:
            self._ready.set()
            for command in monitor.listen():
                if self._marker in command["command"]:
                    return
                self.commands.append(command["command"])

    def stop(self) -> list[str]:
        """The commands seen up to now: the marker, sent last, ends the listening after them."""
        self._client.echo(self._marker)
        self._thread.join(10)
        assert not self._thread.is_alive(), "MONITOR saw its end marker"
        return self.commands


def test_erasing_a_closed_account_issues_no_scan_of_the_store(settings, workers, apps, auth, unique, connect, stores):
    net = _network(settings, workers, apps, auth, unique, connect, stores)
    closer = net["closer"]
    servers = {(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"]): s
               for s in stores.values()}
    monitors = [_Monitor(client) for client in servers.values()]

    _close(settings, closer)
    # The erasure reads (where a SCAN would be) before it commits, with the tombstone, in one
    # round trip: once every service's tombstone is there, every read it made was sent.
    messaging = MessagingKeys(settings.shards)

    def tombstoned():
        return (all(stores[s].hget(members.key(s, settings, closer), "state") == "closed" for s in SERVICES)
                and stores["notifications"].exists(messaging.closed(closer)))  # messaging's database here
    eventually(tombstoned, 60, interval=0.2, message="every service handled member.closed")
    seen = [command for monitor in monitors for command in monitor.stop()]

    scans = [c for c in seen if c.split(" ", 1)[0].strip('"').upper() in ("SCAN", "SSCAN", "ZSCAN", "HSCAN", "KEYS")]
    assert not scans, "the erasure scanned:\n" + "\n".join(scans[:20])
    assert any(closer in c for c in seen), "the monitors saw the erasure's commands"
    _erased(stores, closer)


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


def test_closing_an_account_takes_its_posts_out_of_its_followers_timelines_also_those_deleted_since(
        settings, workers, apps, auth, unique, stores):
    """A post deleted after its fan-out is no longer in the author's list, but still in the
    timelines it reached: the erasure finds it there."""
    from services.feed import store as feed_keys

    for service in ("follows", "feed"):  # the follows relay publishes the follow the feed learns
        workers(service)
    feed = apps("feed")
    closer, reader = unique("closer"), unique("reader")
    assert apps("follows").put(f"/v1/following/{closer}", headers=auth(reader)).status_code == 201
    eventually(lambda: stores["feed"].zscore(feed_keys.followers(closer), reader) is not None, 20,
               message="the feed's audience replica learns the follow")
    assert feed.get("/v1/feed", headers=auth(reader)).status_code == 200  # the reader's timeline is live
    post = feed.post("/v1/posts", json={"text": "soon gone", "visibility": "public"}, headers=auth(closer))
    post_id = post.get_json()["id"]
    timeline = feed_keys.timeline(reader)
    eventually(lambda: stores["timeline cache"].zscore(timeline, post_id) is not None, 20,
               message="the post reaches the reader's timeline")
    assert feed.delete(f"/v1/posts/{post_id}", headers=auth(closer)).status_code == 204
    assert stores["timeline cache"].zscore(timeline, post_id) is not None  # a deletion leaves timelines as they are

    _close(settings, closer)

    eventually(lambda: stores["timeline cache"].zscore(timeline, post_id) is None, 30,
               message="the deleted post taken out of the reader's timeline")
    assert stores["timeline cache"].exists(timeline)  # the reader's own timeline stays
