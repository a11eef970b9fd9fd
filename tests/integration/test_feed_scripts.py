"""The feed's Lua scripts on a real Redis, one by one: what each does and replies.

Each runs with the keys of one slot (the shared convention refuses any other call), an
outbox stream here tagged with the write's shard as a sharded outbox is.
"""
from __future__ import annotations

import pytest

from services.feed import store as keys
from services.feed.timelines import Timelines
from shared import slots
from shared.events.catalogue import DISCONNECTED_MAX
from shared.store_client import connect


@pytest.fixture
def store(settings):
    return connect(settings.store_url("feed"))


@pytest.fixture
def cache(settings):
    return connect(settings.cache_url)


@pytest.fixture
def post_id(store, unique):
    """A stored post of a member of its own, with its outbox stream in the post's shard."""
    post_id = f"{unique('ada')}~k1"
    store.hset(keys.post(post_id), mapping={"author": keys.author_of(post_id), "created_ms": 1, "likes": 0,
                                            "comments": 0, "reshares": 0})
    store.zadd(keys.posts(keys.author_of(post_id)), {post_id: 1})
    store.zadd(keys.public_posts(keys.author_of(post_id)), {post_id: 1})
    return post_id


def outbox(post_id: str) -> str:
    """An outbox stream of the post's own in its shard: a shard's stream would be shared with
    other tests' posts of that shard (one in 64)."""
    return f"outbox:test-feed:{post_id}:{keys.post_shard(post_id)}"


def like(store, post_id, member, delta):
    return keys.LIKE(store, keys={"post": keys.post(post_id), "likers": keys.likers(post_id),
                                  "outbox": outbox(post_id)}, member=member, delta=delta, event=["n", "1"])


def test_like_replies_changed_once_then_unchanged_and_counts_once(store, post_id):
    assert like(store, post_id, "grace", 1) == "changed"
    assert like(store, post_id, "grace", 1) == "unchanged"
    assert store.hget(keys.post(post_id), "likes") == "1" and store.xlen(outbox(post_id)) == 1
    assert like(store, post_id, "grace", -1) == "changed"
    assert like(store, post_id, "grace", -1) == "unchanged"
    assert store.hget(keys.post(post_id), "likes") == "0" and store.xlen(outbox(post_id)) == 2


def test_like_of_a_missing_post_replies_not_found_and_writes_nothing(store, unique):
    missing = f"{unique('ada')}~k1"
    assert like(store, missing, "grace", 1) == "not_found"
    assert store.exists(keys.post(missing), keys.likers(missing)) == 0
    # The shard's outbox stream is shared with other writes of that shard: none of its entries names the post.
    assert not [f for _, f in store.xrange(outbox(missing)) if missing in f["value"]]


def delete(store, post_id):
    author = keys.author_of(post_id)
    return keys.DELETE_POST(store, keys={
        "post": keys.post(post_id), "likers": keys.likers(post_id), "comments": keys.comments(post_id),
        "comment_bodies": keys.comment_bodies(post_id), "resharers": keys.resharers(post_id),
        "posts": keys.posts(author), "public_posts": keys.public_posts(author), "outbox": outbox(post_id)},
        post_id=post_id, event=["n", "1"])


def test_delete_post_replies_deleted_with_everything_of_the_post_then_not_found(store, post_id):
    like(store, post_id, "grace", 1)
    assert delete(store, post_id) == "deleted"
    author = keys.author_of(post_id)
    assert store.exists(keys.post(post_id), keys.likers(post_id)) == 0
    assert store.zscore(keys.posts(author), post_id) is None and store.zscore(keys.public_posts(author), post_id) is None
    assert delete(store, post_id) == "not_found"
    assert store.xlen(outbox(post_id)) == 2  # the like's event and the deletion's, not a second deletion


def reshared(store, original, reshare, delta):
    return keys.RESHARED(store, keys={"post": keys.post(original), "resharers": keys.resharers(original)},
                         reshare_id=reshare, delta=delta)


def test_reshared_counts_a_reshare_once_by_its_id_and_never_recreates_a_deleted_original(store, post_id, unique):
    reshare = f"{unique('bob')}~k2"
    assert reshared(store, post_id, reshare, 1) == "changed"
    assert reshared(store, post_id, reshare, 1) == "unchanged"
    assert store.hget(keys.post(post_id), "reshares") == "1"
    assert reshared(store, post_id, reshare, -1) == "changed"
    assert store.hget(keys.post(post_id), "reshares") == "0"
    delete(store, post_id)
    assert reshared(store, post_id, reshare, -1) == "not_found"
    assert store.exists(keys.post(post_id)) == 0


def follow_side(store, follower, followee, version, present=True):
    return keys.FOLLOW_SIDE(store, keys={"edges": keys.following(follower),
                                         "version": keys.follow_version(follower, followee),
                                         "seen": keys.following_seen(follower)},
                            member=followee, score=5, version=version, present="1" if present else "0")


def test_follow_side_applies_a_newer_version_only(store, unique):
    ada, grace = unique("ada"), unique("grace")
    assert follow_side(store, ada, grace, 3) == ["applied", 1]
    assert follow_side(store, ada, grace, 3) == ["current", 1]
    assert follow_side(store, ada, grace, 2, present=False) == ["stale", 1]
    assert store.zscore(keys.following(ada), grace) == 5
    assert follow_side(store, ada, grace, 4, present=False) == ["applied", 0]
    assert store.get(keys.follow_version(ada, grace)) == "4"


def pair_side(store, member, other, change, version, at=10):
    return keys.PAIR_SIDE(store, keys={"connections": keys.connections(member), "hidden": keys.hidden(member),
                                       "disconnections": keys.disconnections(member),
                                       "version": keys.pair_version(member, other), "paired": keys.paired(member)},
                          other=other, change=change, version=version, at=at, keep=DISCONNECTED_MAX)


def test_pair_side_connects_disconnects_blocks_and_unblocks_by_version(store, unique):
    ada, grace = unique("ada"), unique("grace")
    assert pair_side(store, ada, grace, "connect", 1) == "applied"
    assert store.sismember(keys.connections(ada), grace)
    assert pair_side(store, ada, grace, "connect", 1) == "current"
    assert pair_side(store, ada, grace, "disconnect", 2) == "applied"
    assert not store.sismember(keys.connections(ada), grace)
    assert store.zscore(keys.disconnections(ada), grace) == 10
    assert pair_side(store, ada, grace, "connect", 1) == "stale"
    assert pair_side(store, ada, grace, "block", 3) == "applied"
    assert store.sismember(keys.hidden(ada), grace)
    assert pair_side(store, ada, grace, "unblock", 4) == "applied"
    assert not store.sismember(keys.hidden(ada), grace)
    assert pair_side(store, ada, grace, "connect", 5) == "applied"
    assert store.zscore(keys.disconnections(ada), grace) is None


def test_pair_side_refuses_an_unknown_change(store, unique):
    ada, grace = unique("ada"), unique("grace")
    with pytest.raises(Exception, match="unknown change"):
        pair_side(store, ada, grace, "befriend", 1)


def test_fan_out_writes_only_live_timelines_of_its_slot_and_replies_how_many(cache, unique):
    # Members of one shard: their timelines share a slot.
    members = [m for m in unique.many("m", 1000) if keys.shard(m) == keys.shard(unique("m0"))]
    live, away = members[:-1], members[-1]
    for member in live:
        cache.zadd(keys.timeline(member), {keys.LIVE: "inf"})
    timelines = [keys.timeline(m) for m in members]
    assert keys.FAN_OUT(cache, keys={"timelines": timelines}, cap=2, entries=[1, "p~1", 2, "p~2", 3, "p~3"]) \
        == len(live)
    assert all(cache.zrange(keys.timeline(m), 0, -1) == ["p~2", "p~3", keys.LIVE] for m in live)
    assert not cache.exists(keys.timeline(away))
    cache.delete(*timelines)


def test_fan_out_refuses_timelines_of_two_slots(cache, unique):
    first = unique("m")
    second = next(m for m in unique.many("m", 200) if keys.shard(m) != keys.shard(first))
    with pytest.raises(slots.CrossSlot):
        keys.FAN_OUT(cache, keys={"timelines": [keys.timeline(first), keys.timeline(second)]}, cap=2,
                     entries=[1, "p~1"])


def test_build_makes_a_live_timeline_capped_with_an_expiry_and_replies_built(cache, unique):
    key = keys.timeline(unique("ada"))
    assert keys.BUILD(cache, keys={"timeline": key}, cap=2, ttl_ms=60_000, live=keys.LIVE,
                      entries=[1, "p~1", 2, "p~2", 3, "p~3"]) == "built"
    assert cache.zrange(key, 0, -1) == ["p~2", "p~3", keys.LIVE]
    assert 0 < cache.pttl(key) <= 60_000
    cache.delete(key)


def test_timeline_window_reads_newest_first_and_replies_nothing_for_a_missing_timeline(cache, unique):
    key = keys.timeline(unique("ada"))
    assert keys.TIMELINE_WINDOW(cache, keys={"timeline": key}, ttl_ms=60_000, max_score="+inf", count=5) is None
    keys.BUILD(cache, keys={"timeline": key}, cap=5, ttl_ms=1_000, live=keys.LIVE, entries=[1, "p~1", 2, "p~2"])
    assert keys.TIMELINE_WINDOW(cache, keys={"timeline": key}, ttl_ms=60_000, max_score="(3", count=5) \
        == ["p~2", "2", "p~1", "1"]
    assert cache.pttl(key) > 1_000  # the read pushed the expiry back
    cache.delete(key)


def test_a_fan_out_to_members_of_many_slots_writes_every_live_timeline(cache, settings, unique):
    members = unique.many("m", 2000)
    assert len({keys.shard(m) for m in members}) == slots.DEFAULT_SHARDS  # every shard has some
    for member in members:
        cache.zadd(keys.timeline(member), {keys.LIVE: "inf"})
    try:
        assert Timelines(cache, settings).fan_out(members, [("p~1", 1)]) == len(members)
        assert all(cache.zscore(keys.timeline(m), "p~1") == 1 for m in members)
    finally:
        cache.delete(*[keys.timeline(m) for m in members])
