"""The feed's own replica of who follows whom and who is connected, and who may see a post.

Built from follows.events (follow edges) and connections.events (connections, blocks);
never from the other services' stores. Each change carries its aggregate's version (a
follow edge's, a member pair's), numbered by the producing store with the change. An edge
or a pair has a side in each member's shard (a following entry and a followers entry; each
member's connections), and each side is applied on its own, in its member's slot, only when
the event's version is newer than the version kept beside that side: a redelivered or stale
event changes nothing, whatever the times the producers stamped, and a side applied before
a crash is not applied twice.

A follow edge changes only with follows events: a connection's removal or a block ends the
follows in the follows service, whose ``follow.removed`` events come in the edge's order.
Acting on them here too could undo a newer follow that crossed the removal on another topic.
"""
from __future__ import annotations

import redis
from redis.cluster import RedisCluster

from services.feed import store as keys
from shared.events.catalogue import DISCONNECTED_MAX
from shared.lua import run_by_sha
from shared.settings import Settings

APPLIED, CURRENT, STALE = "applied", "current", "stale"


def _queue_recent(pipe, settings: Settings, follower: str, followee: str) -> None:
    last = settings.backfill_limit - 1
    pipe.sismember(keys.connections(follower), followee)
    pipe.zrevrange(keys.posts(followee), 0, last, withscores=True)
    pipe.zrevrange(keys.public_posts(followee), 0, last, withscores=True)


def _recent(connected, every, public) -> list[tuple[str, float]]:
    return every if connected else public


def recent_visible(store: redis.Redis, settings: Settings, follower: str, followee: str) -> list[tuple[str, float]]:
    """``followee``'s recent posts that ``follower`` may see (all of them between connections,
    else the public ones): what a new follow backfills. One round trip."""
    with store.pipeline(transaction=False) as pipe:
        _queue_recent(pipe, settings, follower, followee)
        return _recent(*pipe.execute())


def _follow_sides(store: redis.Redis, settings: Settings, follower: str, followee: str, since_ms: int,
                  version: int, present: bool, read_recent: bool = False) -> str | tuple[str, list]:
    """Both sides of the edge ``follower`` → ``followee``; the follower's side's word (they
    read their own follows) and the high-follower ranking of the followee kept current.
    ``read_recent``: also the followee's recent posts visible to the follower, read after both
    sides are written (on one node in the same round trip: a pipeline runs in order)."""
    flag = "1" if present else "0"
    recent = None
    sides = [({"edges": keys.following(follower), "version": keys.follow_version(follower, followee),
               "seen": keys.following_seen(follower)}, followee),
             ({"edges": keys.followers(followee), "version": keys.follower_version(followee, follower),
               "seen": keys.followers_seen(followee)}, follower)]
    if isinstance(store, RedisCluster):
        # A cluster's pipeline runs no script, and the two sides' slots may be on two nodes:
        # one call each, routed (and re-routed through a failover) by the cluster client.
        (word, _), (their_word, followers) = [
            keys.FOLLOW_SIDE(store, keys=side_keys, member=other, score=since_ms, version=version, present=flag)
            for side_keys, other in sides]
        if read_recent:
            recent = recent_visible(store, settings, follower, followee)
    else:
        with store.pipeline(transaction=False) as pipe:  # two scripts, each of one slot: one round trip
            for side_keys, other in sides:
                keys.FOLLOW_SIDE(store, keys=side_keys, pipe=pipe, member=other, score=since_ms, version=version,
                                 present=flag)
            if read_recent:
                _queue_recent(pipe, settings, follower, followee)
            (word, _), (their_word, followers), *reads = pipe.execute()
        if read_recent:
            recent = _recent(*reads)
    if their_word == APPLIED:
        _rank_author(store, settings, followee, followers, present)
    return (word, recent) if read_recent else word


def follow_reading_recent(store: redis.Redis, settings: Settings, follower: str, followee: str, since_ms: int,
                          version: int) -> tuple[str, list[tuple[str, float]]]:
    """Record ``follower`` → ``followee`` ('applied', 'current': applied already, or 'stale'),
    and then the followee's recent posts the follower may see (``recent_visible``):
    read after the edge is written, so a post stored meanwhile is either among them or fanned
    out to the new follower, never neither."""
    return _follow_sides(store, settings, follower, followee, since_ms, version, True, read_recent=True)


def unfollow(store: redis.Redis, settings: Settings, follower: str, followee: str, version: int) -> str:
    """Remove the edge: 'applied', 'current' (applied already) or 'stale'."""
    return _follow_sides(store, settings, follower, followee, 0, version, False)


def _rank_author(store: redis.Redis, settings: Settings, author: str, followers: int, gained: bool) -> None:
    """Keep the high-follower authors (not fanned out, merged at read time) current: every
    shard's copy changes when ``author`` crosses the threshold, one key per command."""
    high = followers > settings.fanout_threshold
    if high != gained:
        return  # a follower gained cannot make an author low, nor one lost make them high
    listed = store.zscore(keys.high_follower_authors(keys.shard(author)), author) is not None
    if high == listed:
        return
    with store.pipeline(transaction=False) as pipe:
        for key in keys.all_high_follower_authors():
            if high:
                pipe.zadd(key, {author: followers})
            else:
                pipe.zrem(key, author)
        pipe.execute()


def _pair_side_call(member: str, other: str, change: str, version: int, at_ms: int = 0) -> tuple:
    return (keys.PAIR_SIDE, {"connections": keys.connections(member), "hidden": keys.hidden(member),
                             "disconnections": keys.disconnections(member),
                             "version": keys.pair_version(member, other), "paired": keys.paired(member)},
            {"other": other, "change": change, "version": version, "at": at_ms, "keep": DISCONNECTED_MAX})


def change_pair(store: redis.Redis, a: str, b: str, change: str, version: int, at_ms: int = 0) -> list[str]:
    """Apply a connections event to both members' sides: ``change`` is 'connect', 'disconnect',
    'block' (disconnected, each hidden from the other) or 'unblock'. Returns the members whose
    side it changed (not stale, not applied already). Both sides' scripts (each in its member's
    slot, each applying only a newer version) in one round trip on one node; on a Redis Cluster,
    whose pipeline runs no script, one call each."""
    calls = [_pair_side_call(member, other, change, version, at_ms) for member, other in ((a, b), (b, a))]
    if isinstance(store, RedisCluster):
        words = [script(store, keys=script_keys, **args) for script, script_keys, args in calls]
    else:
        words = run_by_sha(store, calls)
    return [member for member, word in zip((a, b), words) if word == APPLIED]


def unstale_sides(store: redis.Redis, a: str, b: str, version: int) -> list[str]:
    """The members whose side of the pair a connections event of ``version`` is not stale for
    (not applied yet, or applied already): read before applying it, for the work that must
    precede it."""
    with store.pipeline(transaction=False) as pipe:
        pipe.get(keys.pair_version(a, b))
        pipe.get(keys.pair_version(b, a))
        held = pipe.execute()
    return [member for member, h in zip((a, b), held) if h is None or int(h) <= version]


def disconnected(store: redis.Redis, author: str) -> list[dict]:
    """The members whose connection with ``author`` ended lately (newest first, at most
    ``DISCONNECTED_MAX``), each with the pair's version as this replica knows it: what a
    connections-only post states for consumers whose replica may be behind."""
    members = store.zrevrange(keys.disconnections(author), 0, DISCONNECTED_MAX - 1)
    if not members:
        return []
    with store.pipeline(transaction=False) as pipe:  # the author's side of each pair: the author's slot
        for m in members:
            pipe.get(keys.pair_version(author, m))
        versions = pipe.execute()
    return [{"member": m, "version": int(v)} for m, v in zip(members, versions) if v is not None]


def audience(store: redis.Redis, author: str, visibility: str) -> list[str]:
    """Who a post reaches besides its author: followers, or followers who are connections."""
    if visibility == "public":
        return store.zrange(keys.followers(author), 0, -1)
    # Both keys are in the author's slot: one command.
    return store.zinter([keys.followers(author), keys.connections(author)])


def follows(store: redis.Redis, follower: str, followee: str) -> bool:
    return store.zscore(keys.following(follower), followee) is not None


def follows_each(store: redis.Redis, edges: list[tuple[str, str]]) -> list[bool]:
    """``follows`` for each (follower, followee) of ``edges``, in one round trip."""
    if not edges:
        return []
    with store.pipeline(transaction=False) as pipe:
        for follower, followee in edges:
            pipe.zscore(keys.following(follower), followee)
        return [score is not None for score in pipe.execute()]


def follower_count(store: redis.Redis, author: str) -> int:
    return store.zcard(keys.followers(author))
