"""Who hears about a new post: the notifications service's replicas of post alerts and connections.

Both are built from the other services' events (never read from their stores). Each change
carries its aggregate's version (a follow edge's, a member pair's), numbered by the producing
store with the change; a replica applies it only when it is newer than the version it holds,
so a stale or repeated event changes nothing whatever the times the producers stamped.
"""
from __future__ import annotations

import weakref

import redis

from services.notifications import store as keys

# The versions queued on a transaction not yet executed. The inbox consumer handles up to a
# batch of one partition's events in one transaction: an event must see the versions the
# events before it in the batch queued, which the store does not show until EXEC.
_queued: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _newer(store: redis.Redis, tx: redis.client.Pipeline, key: str, version: int) -> bool:
    """Whether ``version`` is newer than the one held at ``key``; if so, queue it as the one held.

    One aggregate's events share a partition, read by one consumer of the group at a time:
    nothing else writes ``key`` between this read and the transaction."""
    queued = _queued.setdefault(tx, {})
    held = queued.get(key)
    if held is None:
        stored = store.get(key)
        held = int(stored) if stored is not None else None
    if held is not None and version <= held:
        return False
    queued[key] = version
    tx.set(key, version)
    return True


def set_post_alerts(tx: redis.client.Pipeline, store: redis.Redis, follower: str, author: str, on: bool,
                    version: int) -> None:
    """Queue, unless stale: ``follower`` does (or no longer does) want an alert for each post of ``author``."""
    if not _newer(store, tx, keys.follow_version(follower, author), version):
        return
    if on:
        tx.sadd(keys.post_alerts(author), follower)
    else:
        tx.srem(keys.post_alerts(author), follower)


def connect(tx: redis.client.Pipeline, store: redis.Redis, a: str, b: str, version: int) -> None:
    if _newer(store, tx, keys.pair_version(a, b), version):
        tx.sadd(keys.connections(a), b)
        tx.sadd(keys.connections(b), a)


def disconnect(tx: redis.client.Pipeline, store: redis.Redis, a: str, b: str, version: int) -> None:
    if _newer(store, tx, keys.pair_version(a, b), version):
        tx.srem(keys.connections(a), b)
        tx.srem(keys.connections(b), a)


def post_audience(store: redis.Redis, author: str, visibility: str,
                  disconnected: list[dict] = ()) -> set[str]:
    """Members to alert of ``author``'s new post: followers with alerts on, and for a
    connections-only post only those who are also connections, as of the post.

    ``disconnected`` is what the feed knew when it stored the post: the members whose
    connection with the author had ended, with the pair's version. The feed.events and
    connections.events topics race, so this replica may not have applied that end yet: a
    member it names is left out unless this replica holds a newer version of the pair (a
    connection made again since)."""
    if visibility != "connections":
        return store.smembers(keys.post_alerts(author))
    members = store.sinter(keys.post_alerts(author), keys.connections(author))
    ended = {d["member"]: d["version"] for d in disconnected if d["member"] in members}
    if ended:
        with store.pipeline(transaction=False) as pipe:
            for member in ended:
                pipe.get(keys.pair_version(author, member))
            held = pipe.execute()
        for (member, version), mine in zip(ended.items(), held):
            if mine is None or int(mine) <= version:
                members.discard(member)
    return members
