"""The feed's own replica of who follows whom and who is connected, and who may see a post.

Built from follows.events (follow edges) and connections.events (connections, blocks);
never from the other services' stores. Each change carries its aggregate's version (a
follow edge's, a member pair's), numbered by the producing store with the change: a change
is applied only when its version is newer than the one the replica holds, so a redelivered
or stale event changes nothing, whatever the times the producers stamped.

A follow edge changes only with follows events: a connection's removal or a block ends the
follows in the follows service, whose ``follow.removed`` events come in the edge's order.
Acting on them here too could undo a newer follow that crossed the removal on another topic.
"""
from __future__ import annotations

import redis

from services.feed import store as keys
from shared.events.catalogue import DISCONNECTED_MAX
from shared.settings import Settings


def _newer(store: redis.Redis, tx: redis.client.Pipeline, key: str, version: int) -> bool:
    """Whether ``version`` is newer than the one held at ``key``; if so, queue it as the one held.

    One aggregate's events share a partition, read by one consumer of the group at a time:
    nothing else writes ``key`` between this read and the transaction."""
    held = store.get(key)
    if held is not None and version <= int(held):
        return False
    tx.set(key, version)
    return True


def follow(tx: redis.client.Pipeline, store: redis.Redis, settings: Settings, follower: str, followee: str,
           since_ms: int, version: int) -> bool:
    """Record ``follower`` → ``followee`` on ``tx``. Returns False when the event is stale."""
    version_key = keys.follow_version(follower, followee)
    with store.pipeline(transaction=False) as pipe:  # what it reads, in one round trip
        pipe.get(version_key)
        pipe.zscore(keys.followers(followee), follower)
        pipe.zcard(keys.followers(followee))
        held, score, followers = pipe.execute()
    if held is not None and version <= int(held):
        return False
    tx.set(version_key, version)
    tx.zadd(keys.following(follower), {followee: since_ms})
    tx.zadd(keys.followers(followee), {follower: since_ms})
    _rank_author(tx, settings, followee, followers + (0 if score is not None else 1))
    return True


def unfollow(tx: redis.client.Pipeline, store: redis.Redis, settings: Settings, follower: str, followee: str,
             version: int) -> bool:
    """Remove the edge on ``tx``. Returns False when the event is stale."""
    if not _newer(store, tx, keys.follow_version(follower, followee), version):
        return False
    if store.zscore(keys.followers(followee), follower) is not None:
        tx.zrem(keys.following(follower), followee)
        tx.zrem(keys.followers(followee), follower)
        _rank_author(tx, settings, followee, store.zcard(keys.followers(followee)) - 1)
    return True


def _rank_author(tx: redis.client.Pipeline, settings: Settings, author: str, followers: int) -> None:
    """Keep the set of high-follower authors (not fanned out, merged at read time) current."""
    if followers > settings.fanout_threshold:
        tx.zadd(keys.HIGH_FOLLOWER_AUTHORS, {author: followers})
    else:
        tx.zrem(keys.HIGH_FOLLOWER_AUTHORS, author)


def connect(tx: redis.client.Pipeline, store: redis.Redis, a: str, b: str, version: int) -> bool:
    """A new connection, unless stale. Returns whether it was applied."""
    if not _newer(store, tx, keys.pair_version(a, b), version):
        return False
    tx.sadd(keys.connections(a), b)
    tx.sadd(keys.connections(b), a)
    tx.zrem(keys.disconnections(a), b)
    tx.zrem(keys.disconnections(b), a)
    return True


def _forget_connection(tx: redis.client.Pipeline, a: str, b: str, at_ms: int) -> None:
    tx.srem(keys.connections(a), b)
    tx.srem(keys.connections(b), a)
    for member, other in ((a, b), (b, a)):
        tx.zadd(keys.disconnections(member), {other: at_ms})
        tx.zremrangebyrank(keys.disconnections(member), 0, -(DISCONNECTED_MAX + 1))


def disconnect(tx: redis.client.Pipeline, store: redis.Redis, a: str, b: str, version: int, at_ms: int) -> bool:
    """A removed connection, unless stale: no longer connected. Returns whether it was applied."""
    if not _newer(store, tx, keys.pair_version(a, b), version):
        return False
    _forget_connection(tx, a, b, at_ms)
    return True


def block(tx: redis.client.Pipeline, store: redis.Redis, blocker: str, blocked: str, version: int,
          at_ms: int) -> bool:
    """A block, unless stale: no connection, and each hidden from the other."""
    if not _newer(store, tx, keys.pair_version(blocker, blocked), version):
        return False
    _forget_connection(tx, blocker, blocked, at_ms)
    tx.sadd(keys.hidden(blocker), blocked)
    tx.sadd(keys.hidden(blocked), blocker)
    return True


def unblock(tx: redis.client.Pipeline, store: redis.Redis, blocker: str, blocked: str, version: int) -> bool:
    if not _newer(store, tx, keys.pair_version(blocker, blocked), version):
        return False
    tx.srem(keys.hidden(blocker), blocked)
    tx.srem(keys.hidden(blocked), blocker)
    return True


def disconnected(store: redis.Redis, author: str) -> list[dict]:
    """The members whose connection with ``author`` ended lately (newest first, at most
    ``DISCONNECTED_MAX``), each with the pair's version as this replica knows it: what a
    connections-only post states for consumers whose replica may be behind."""
    members = store.zrevrange(keys.disconnections(author), 0, DISCONNECTED_MAX - 1)
    if not members:
        return []
    with store.pipeline(transaction=False) as pipe:  # one GET per pair: each key its own slot
        for m in members:
            pipe.get(keys.pair_version(author, m))
        versions = pipe.execute()
    return [{"member": m, "version": int(v)} for m, v in zip(members, versions) if v is not None]


def audience(store: redis.Redis, author: str, visibility: str) -> list[str]:
    """Who a post reaches besides its author: followers, or followers who are connections."""
    if visibility == "public":
        return store.zrange(keys.followers(author), 0, -1)
    # Both keys carry the author's hash tag: one command, one slot.
    return store.zinter([keys.followers(author), keys.connections(author)])


def follows(store: redis.Redis, follower: str, followee: str) -> bool:
    return store.zscore(keys.following(follower), followee) is not None


def follower_count(store: redis.Redis, author: str) -> int:
    return store.zcard(keys.followers(author))
