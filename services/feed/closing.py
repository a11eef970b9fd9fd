"""A closed account's erasure in the feed service (on ``member.closed``, from the member
replica's consumer): its posts and what hangs on them, their ids in the timelines they were
fanned out to, its likes and comments on others' posts (their counts drop), its own timeline,
and its entries on both sides of the audience replica.

Store writes are single-key commands, or ``ERASE_LIKE``/``ERASE_COMMENTS``/``RESHARED`` on one
post's slot, queued on the consumer's per-slot transactions; the timeline cache is written at
once, one key a command. Counts move only on SREM/ZREM replies, so a retried ``member.closed``
drops nothing twice. Likes and comments have no index by member: they are found by one SCAN of
the likers and comment keys (closing an account is rare; an index would cost every like).
"""
from __future__ import annotations

import json

from services.feed import store as keys
from shared.bus.consumer import Effects


def _suffixes(store, prefix: str) -> set[str]:
    return {k[len(prefix):] for k in store.scan_iter(match=prefix + "*", count=1000)}


def _post_of(key: str) -> str:
    return key.split(":", 3)[3]


def erase(member: str, fx: Effects) -> None:
    """Queue the erasure of everything the feed store and timeline cache hold of ``member``."""
    store, tx, cache = fx.store, fx.tx, fx.extra["cache"]
    tag = keys.shard(member)
    own = store.zrange(keys.posts(member), 0, -1)
    # Who may hold the member's posts in their timeline: whom fan-out writes to.
    audience = set(store.zrange(keys.followers(member), 0, -1)) | set(store.smembers(keys.connections(member)))
    following = set(store.zrange(keys.following(member), 0, -1)) | _suffixes(store, f"feed:{tag}:following-version:{member}|")
    followers = audience | _suffixes(store, f"feed:{tag}:followers-version:{member}|")
    pairs = (set(store.smembers(keys.connections(member))) | set(store.smembers(keys.hidden(member)))
             | set(store.zrange(keys.disconnections(member), 0, -1))
             | _suffixes(store, f"feed:{tag}:pair-version:{member}|"))

    for post_id in own:
        for reshare in store.smembers(keys.resharers(post_id)):
            # Others' reshares stay theirs, but no longer point at a post that is gone.
            tx.hset(keys.post(reshare), "reshare_of", "")
        original = store.hget(keys.post(post_id), "reshare_of")
        if original and keys.author_of(original) != member:
            keys.RESHARED(tx, pipe=tx, keys={"post": keys.post(original), "resharers": keys.resharers(original)},
                          reshare_id=post_id, delta=-1)
        tx.delete(keys.post(post_id), keys.likers(post_id), keys.comments(post_id),
                  keys.comment_bodies(post_id), keys.resharers(post_id))
    if own:
        for reader in audience:
            cache.zrem(keys.timeline(reader), *own)
    cache.delete(keys.timeline(member))

    for key in store.scan_iter(match="feed:*:likers:*", count=1000):
        post_id = _post_of(key)
        if keys.author_of(post_id) != member and store.sismember(key, member):
            keys.ERASE_LIKE(tx, pipe=tx, keys={"post": keys.post(post_id), "likers": key}, member=member)
    for key in store.scan_iter(match="feed:*:comment-bodies:*", count=1000):
        post_id = _post_of(key)
        if keys.author_of(post_id) == member:
            continue
        ids = [cid for cid, raw in store.hgetall(key).items() if json.loads(raw).get("author") == member]
        if ids:
            keys.ERASE_COMMENTS(tx, pipe=tx, keys={"post": keys.post(post_id), "comments": keys.comments(post_id),
                                                   "comment_bodies": key}, ids=ids)

    for followee in following:
        tx.zrem(keys.followers(followee), member)
        tx.delete(keys.follower_version(followee, member))
        tx.delete(keys.follow_version(member, followee))
    for follower in followers:
        tx.zrem(keys.following(follower), member)
        tx.delete(keys.follow_version(follower, member))
        tx.delete(keys.follower_version(member, follower))
    for other in pairs:
        tx.srem(keys.connections(other), member)
        tx.srem(keys.hidden(other), member)
        tx.zrem(keys.disconnections(other), member)
        tx.delete(keys.pair_version(other, member))
        tx.delete(keys.pair_version(member, other))
    for copy in keys.all_high_follower_authors():
        tx.zrem(copy, member)
    tx.delete(keys.posts(member), keys.public_posts(member), keys.followers(member), keys.following(member),
              keys.connections(member), keys.hidden(member), keys.disconnections(member))
