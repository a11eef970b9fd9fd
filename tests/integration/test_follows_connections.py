"""What follows does with connections.events: connecting makes both follow each other,
removing a connection or blocking removes the follows, a block refuses follows while it
lasts. The events are produced to Kafka here, as the connections service would."""
from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid

import pytest
import redis
from kafka import KafkaProducer

from services.feed import store as feed_keys
from services.follows import store as keys
from services.follows.worker import consumers
from shared.bus.consumer import ConsumerRunner
from shared.bus.outbox import Outbox
from shared.events import encode, new_event
from tests.support.infra import eventually, events_of, read_topic
from shared import store_client

T0 = "2026-11-26T10:00:00.000Z"
# Versions as the connections store numbers a pair's changes: increasing in the order the
# tests publish them (one counter serves every pair: only the order within a pair matters).
_versions = itertools.count(1)


@pytest.fixture(scope="module")
def producer(settings):
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    yield producer
    producer.close()


@pytest.fixture
def follows(apps, workers):
    workers("follows")
    return apps("follows")


@pytest.fixture(scope="module")
def store(settings):
    return store_client.connect(settings.store_url("follows"))


@pytest.fixture
def publish(settings, producer):
    def send(name, at=T0, version=None, **data):
        event = new_event("connections", name, {**data, "at": at, "version": version or next(_versions)})
        producer.send(settings.topic("connections.events"), key=event.key.encode(), value=encode(event)).get(10)
        return event
    return send


def connect(publish, inviter, invitee, at=T0, version=None):
    return publish("invitation.accepted", at=at, version=version, invitation_id=uuid.uuid4().hex, inviter=inviter,
                   invitee=invitee)


def follows_now(follows, auth, follower, followee) -> bool:
    return follows.get(f"/v1/following/{followee}", headers=auth(follower)).json["following"]


def sees_followers(follows, auth, viewer, member) -> bool:
    return follows.get(f"/v1/members/{member}/followers", headers=auth(viewer)).status_code == 200


def follow_events(settings, until):
    return read_topic(settings, "follows.events", until)


def test_connecting_makes_both_follow_each_other_silently(follows, auth, settings, publish, unique):
    ada, grace = unique("ada"), unique("grace")

    connect(publish, ada, grace)

    eventually(lambda: follows_now(follows, auth, ada, grace) and follows_now(follows, auth, grace, ada),
               message="mutual follows")
    # Each direction's event leaves from its follower's shard of the outbox, relayed on its own:
    # read until both are there, whichever came first.
    events = follow_events(settings, lambda evs: all(events_of(evs, "follow.created", follower=m)
                                                     for m in (ada, grace)))
    created = events_of(events, "follow.created", follower=ada) + events_of(events, "follow.created", follower=grace)
    assert sorted((e.data["follower"], e.data["reason"]) for e in created) == \
        [(ada, "connection"), (grace, "connection")]
    assert sees_followers(follows, auth, grace, ada) and sees_followers(follows, auth, ada, grace)


def test_connecting_with_someone_already_followed_adds_only_the_missing_direction(
        follows, auth, settings, publish, unique):
    ada, grace = unique("ada"), unique("grace")
    follows.put(f"/v1/following/{grace}", headers=auth(ada), json={"notify_on_post": True})

    connect(publish, grace, ada)

    eventually(lambda: follows_now(follows, auth, grace, ada), message="grace follows ada")
    events = follow_events(settings, lambda evs: events_of(evs, "follow.created", follower=grace))
    assert [e.data["reason"] for e in events_of(events, "follow.created", follower=ada)] == ["explicit"]
    assert follows.get(f"/v1/following/{grace}", headers=auth(ada)).json["notify_on_post"] is True


def test_a_member_may_unfollow_a_connection_stay_connected_and_follow_again(follows, auth, publish, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(publish, ada, grace)
    eventually(lambda: follows_now(follows, auth, ada, grace))

    assert follows.delete(f"/v1/following/{grace}", headers=auth(ada)).status_code == 204

    assert not follows_now(follows, auth, ada, grace) and follows_now(follows, auth, grace, ada)
    assert sees_followers(follows, auth, ada, grace)  # still connected
    assert follows.put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201


def test_a_connection_may_follow_a_member_who_accepts_connections_only(follows, auth, publish, unique):
    ada, grace = unique("ada"), unique("grace")
    follows.patch("/v1/settings", headers=auth(grace), json={"followers": "connections"})
    connect(publish, ada, grace)
    eventually(lambda: follows_now(follows, auth, ada, grace), message="the automatic follow")
    follows.delete(f"/v1/following/{grace}", headers=auth(ada))

    assert follows.put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201


def test_removing_a_connection_removes_the_follows_both_ways(follows, auth, settings, publish, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(publish, ada, grace)
    connect(publish, ada, linus)
    eventually(lambda: follows_now(follows, auth, grace, ada) and follows_now(follows, auth, linus, ada))

    publish("connection.removed", at="2026-11-26T11:00:00.000Z", remover=grace, other=ada)

    eventually(lambda: not follows_now(follows, auth, ada, grace) and not follows_now(follows, auth, grace, ada),
               message="follows gone")
    assert follows_now(follows, auth, linus, ada)  # other connections untouched
    assert not sees_followers(follows, auth, grace, ada)
    events = follow_events(settings, lambda evs: len(events_of(evs, "follow.removed", followee=ada)) >= 1
                           and events_of(evs, "follow.removed", follower=ada))
    removed = events_of(events, "follow.removed", follower=ada) + events_of(events, "follow.removed", followee=ada)
    assert sorted((e.data["follower"], e.data["reason"]) for e in removed) == \
        sorted([(ada, "connection_removed"), (grace, "connection_removed")])


def test_a_block_removes_the_follows_and_refuses_them_until_lifted(follows, auth, settings, publish, unique):
    ada, grace = unique("ada"), unique("grace")
    follows.put(f"/v1/following/{grace}", headers=auth(ada))
    follows.put(f"/v1/following/{ada}", headers=auth(grace))

    publish("block.added", at="2026-11-26T11:00:00.000Z", blocker=grace, blocked=ada)

    eventually(lambda: not follows_now(follows, auth, ada, grace) and not follows_now(follows, auth, grace, ada),
               message="follows gone")
    for follower, followee in ((ada, grace), (grace, ada)):
        refused = follows.put(f"/v1/following/{followee}", headers=auth(follower))
        assert refused.status_code == 403 and refused.json["code"] == "follow_refused"
        assert "block" not in refused.json["detail"].lower()
    events = follow_events(settings, lambda evs: events_of(evs, "follow.removed", follower=grace))
    assert {e.data["reason"] for e in events_of(events, "follow.removed", follower=ada)
            + events_of(events, "follow.removed", follower=grace)} == {"blocked"}

    publish("block.removed", at="2026-11-26T12:00:00.000Z", blocker=grace, blocked=ada)

    eventually(lambda: follows.put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201,
               message="follow allowed again")
    assert not follows_now(follows, auth, grace, ada)  # nothing restored


def test_a_stale_event_changes_nothing(follows, auth, settings, store, publish, unique):
    ada, grace = unique("ada"), unique("grace")
    publish("connection.removed", version=2, remover=ada, other=grace)
    stale = connect(publish, ada, grace, version=1)  # an earlier version of the pair than the removal

    eventually(lambda: store.exists(handled_marker(settings, "follows.connections", stale)), message="handled")
    assert not follows_now(follows, auth, ada, grace) and not follows_now(follows, auth, grace, ada)
    assert not sees_followers(follows, auth, grace, ada)


def test_an_older_block_version_arriving_late_changes_nothing(follows, auth, settings, store, publish, unique):
    """A block lifted (version 2), then an older block of the pair (version 1) reaching the
    replica late: the follows stay and nothing is refused."""
    ada, grace = unique("ada"), unique("grace")
    follows.put(f"/v1/following/{grace}", headers=auth(ada))
    follows.put(f"/v1/following/{ada}", headers=auth(grace))
    publish("block.removed", version=2, blocker=grace, blocked=ada)
    late = publish("block.added", version=1, blocker=grace, blocked=ada)

    eventually(lambda: store.exists(handled_marker(settings, "follows.connections", late)), message="handled")
    assert follows_now(follows, auth, ada, grace) and follows_now(follows, auth, grace, ada)
    assert not store.sismember(keys.blocks(grace), ada) and not store.sismember(keys.blocked_by(ada), grace)
    assert store.get(keys.pair_version(grace, ada)) == store.get(keys.pair_version(ada, grace)) == "2"
    follows.delete(f"/v1/following/{grace}", headers=auth(ada))
    assert follows.put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201


def test_an_event_delivered_twice_changes_nothing(follows, auth, settings, store, producer, publish, unique):
    ada, grace = unique("ada"), unique("grace")
    event = new_event("connections", "invitation.accepted",
                      {"invitation_id": uuid.uuid4().hex, "inviter": ada, "invitee": grace, "at": T0,
                       "version": next(_versions)})
    for _ in range(2):
        producer.send(settings.topic("connections.events"), key=event.key.encode(), value=encode(event))
    producer.flush()
    eventually(lambda: follows_now(follows, auth, ada, grace))
    follows.delete(f"/v1/following/{grace}", headers=auth(ada))
    # A copy arriving after the unfollow must not bring the follow back.
    producer.send(settings.topic("connections.events"), key=event.key.encode(), value=encode(event))
    # The pair's events share a partition: once this later one is handled, so is the copy.
    marker = publish("block.removed", at="2026-11-26T10:05:00.000Z", blocker=grace, blocked=ada)
    eventually(lambda: store.exists(handled_marker(settings, "follows.connections", marker)), message="marker")

    events = follow_events(settings, lambda evs: events_of(evs, "follow.removed", follower=ada))
    assert len(events_of(events, "follow.created", follower=ada)) == 1
    assert len(events_of(events, "follow.created", follower=grace)) == 1
    assert not follows_now(follows, auth, ada, grace) and follows_now(follows, auth, grace, ada)


def handled_marker(settings, consumer: str, event) -> str:
    """The key the consumer runner stores once it has handled ``event`` (see shared/bus/consumer.py)."""
    return f"dedup:{settings.group(consumer)}:{event.dedup_key}"


def _snapshot(store: redis.Redis, members: list[str]) -> dict:
    snap = {}
    for m in members:
        snap[m] = (store.zrange(keys.following(m), 0, -1, withscores=True),
                   store.zrange(keys.followers(m), 0, -1, withscores=True),
                   sorted(store.smembers(keys.connections(m))), sorted(store.smembers(keys.blocks(m))))
    return snap


def test_replaying_connections_events_under_a_new_group_rebuilds_the_same_replica(
        follows, auth, settings, store, publish, unique):
    ada, grace, linus, troll = unique("ada"), unique("grace"), unique("linus"), unique("troll")
    members = [ada, grace, linus, troll]
    sent = [connect(publish, ada, grace), connect(publish, ada, linus),
            publish("block.added", at="2026-11-26T10:30:00.000Z", blocker=ada, blocked=troll),
            publish("connection.removed", at="2026-11-26T11:00:00.000Z", remover=linus, other=ada)]
    eventually(lambda: all(store.exists(handled_marker(settings, "follows.connections", e)) for e in sent),
               message="the service's consumer handled our events")
    follows.delete(f"/v1/following/{grace}", headers=auth(ada))  # after the connection: must stay undone
    # The followers are projections of the follows, applied by the worker from follows.events.
    eventually(lambda: store.zrange(keys.followers(ada), 0, -1) == [grace] and not store.exists(keys.followers(grace)),
               message="the followers projected")
    before = _snapshot(store, members)
    assert [m for m, _ in before[grace][0]] == [ada] and before[ada][0] == [] and before[linus][2] == []
    assert before[ada][2] == [grace] and before[ada][3] == [troll]

    spec = dataclasses.replace(consumers(settings)[0], name=f"follows.connections-replay-{uuid.uuid4().hex[:6]}")
    replay_outbox = Outbox(f"follows-replay-{uuid.uuid4().hex[:6]}", settings)  # what a replay would emit
    runner = ConsumerRunner(spec, settings, store, replay_outbox)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        eventually(lambda: all(store.exists(handled_marker(settings, spec.name, e)) for e in sent), timeout=30, message="the replay reached our events")
    finally:
        stop.set()
        thread.join(15)

    assert _snapshot(store, members) == before
    emitted = [fields["value"] for stream in replay_outbox.streams() for _, fields in store.xrange(stream.key)]
    assert not [v for v in emitted if any(m in v for m in members)]
    store.delete(*(s.key for s in replay_outbox.streams()))


def test_a_removal_stamped_before_the_connection_it_ends_still_ends_it(follows, auth, settings, store, publish,
                                                                      unique):
    """Two API processes stamp a pair's changes with their own clocks: the removal, made after
    the connection, may carry the earlier time. Its version, numbered by the connections store,
    says it came after."""
    ada, grace = unique("ada"), unique("grace")
    connect(publish, ada, grace, at="2026-11-26T10:00:00.500Z", version=1)
    eventually(lambda: follows_now(follows, auth, ada, grace) and follows_now(follows, auth, grace, ada),
               message="mutual follows")

    removal = publish("connection.removed", at="2026-11-26T10:00:00.100Z", version=2, remover=ada, other=grace)

    eventually(lambda: store.exists(handled_marker(settings, "follows.connections", removal)), message="handled")
    assert not follows_now(follows, auth, ada, grace) and not follows_now(follows, auth, grace, ada)
    assert not sees_followers(follows, auth, grace, ada)
    assert store.get(keys.pair_version(grace, ada)) == store.get(keys.pair_version(ada, grace)) == "2"


def test_a_follow_flipped_from_two_threads_leaves_the_feeds_replica_as_the_follows_store(
        follows, auth, settings, store, workers, unique):
    """Each follow and unfollow of one edge is numbered by the follows store in the script that
    makes it: the versions on follows.events follow the order the store applied the changes
    (which the times stamped by concurrent requests need not), and the feed's replica, applying
    them by version, ends as the store does."""
    workers("feed")
    ada, grace = unique("ada"), unique("grace")
    barrier = threading.Barrier(2)

    def flip(method):
        barrier.wait()
        for _ in range(15):
            getattr(follows, method)(f"/v1/following/{grace}", headers=auth(ada))

    threads = [threading.Thread(target=flip, args=(m,)) for m in ("put", "delete")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    last = int(store.get(keys.follow_version(ada, grace)))
    events = follow_events(settings, lambda evs: any(e.data.get("follower") == ada and e.data["version"] == last
                                                     for e in evs))
    edge = [e for e in events if e.data.get("follower") == ada and e.data.get("followee") == grace]
    assert [e.data["version"] for e in edge] == list(range(1, last + 1))
    # The last event says what the store ends with; creations and removals alternate.
    assert (edge[-1].name == "follow.created") == follows_now(follows, auth, ada, grace)
    assert all(a.name != b.name for a, b in zip(edge, edge[1:]))
    feed_store = store_client.connect(settings.store_url("feed"))
    eventually(lambda: feed_store.get(feed_keys.follow_version(ada, grace)) == str(last),
               message="the feed applied the edge's last change")
    assert (feed_store.zscore(feed_keys.following(ada), grace) is not None) == follows_now(follows, auth, ada, grace)
