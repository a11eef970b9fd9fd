"""The feed's own replica of who follows whom and who is connected, and who may see a post.

Built from follows.events (follow edges) and connections.events (connections, blocks);
never from the other services' stores. Every change is idempotent, so a redelivered event
changes nothing, and a stale one (older than the state it would undo) is ignored.
"""
from __future__ import annotations

import redis

from services.feed import store as keys
from shared.settings import Settings


def follow(tx: redis.client.Pipeline, store: redis.Redis, settings: Settings, follower: str, followee: str,
           since_ms: int) -> bool:
    """Record ``follower`` → ``followee`` on ``tx``. Returns False when a block forbids it."""
    if store.sismember(keys.hidden(follower), followee):
        return False  # a follow event that crossed a block in flight
    tx.zadd(keys.following(follower), {followee: since_ms})
    tx.zadd(keys.followers(followee), {follower: since_ms})
    known = store.zscore(keys.followers(followee), follower) is not None
    _rank_author(tx, settings, followee, store.zcard(keys.followers(followee)) + (0 if known else 1))
    return True


def unfollow(tx: redis.client.Pipeline, store: redis.Redis, settings: Settings, follower: str, followee: str,
             at_ms: int) -> None:
    """Remove the edge unless it was made after ``at_ms`` (a stale removal)."""
    since = store.zscore(keys.followers(followee), follower)
    if since is None or since > at_ms:
        return
    tx.zrem(keys.following(follower), followee)
    tx.zrem(keys.followers(followee), follower)
    _rank_author(tx, settings, followee, store.zcard(keys.followers(followee)) - 1)


def _rank_author(tx: redis.client.Pipeline, settings: Settings, author: str, followers: int) -> None:
    """Keep the set of high-follower authors (not fanned out, merged at read time) current."""
    if followers > settings.fanout_threshold:
        tx.zadd(keys.HIGH_FOLLOWER_AUTHORS, {author: followers})
    else:
        tx.zrem(keys.HIGH_FOLLOWER_AUTHORS, author)


def connect(tx: redis.client.Pipeline, a: str, b: str) -> None:
    tx.sadd(keys.connections(a), b)
    tx.sadd(keys.connections(b), a)


def disconnect(tx: redis.client.Pipeline, store: redis.Redis, settings: Settings, a: str, b: str,
               at_ms: int) -> None:
    """A removed connection: no longer connected, and the follows both ways end with it."""
    tx.srem(keys.connections(a), b)
    tx.srem(keys.connections(b), a)
    unfollow(tx, store, settings, a, b, at_ms)
    unfollow(tx, store, settings, b, a, at_ms)


def block(tx: redis.client.Pipeline, store: redis.Redis, settings: Settings, blocker: str, blocked: str,
          at_ms: int) -> None:
    """A block removes the connection and the follows, and hides each from the other."""
    disconnect(tx, store, settings, blocker, blocked, at_ms)
    tx.sadd(keys.hidden(blocker), blocked)
    tx.sadd(keys.hidden(blocked), blocker)


def unblock(tx: redis.client.Pipeline, blocker: str, blocked: str) -> None:
    tx.srem(keys.hidden(blocker), blocked)
    tx.srem(keys.hidden(blocked), blocker)


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
