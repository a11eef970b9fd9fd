"""A closed account's erasure in the feed service (on ``member.closed``, from the member
replica's consumer): its posts and what hangs on them, every entry of its posts in the
timelines of its followers and connections, past ones too (also of posts deleted after their
fan-out, which a deletion leaves there), its likes and comments on others' posts (their counts drop), its own timeline,
and its entries on both sides of the audience replica.

Store writes are single-key commands, or ``ERASE_LIKE``/``ERASE_COMMENTS``/``RESHARED`` on one
post's slot, queued on the consumer's per-slot transactions; the timeline cache is written at
once, one key a command. Counts move only on SREM/ZREM replies, so a retried ``member.closed``
drops nothing twice.

No SCAN: what the member left in other members' and posts' slots is found from footprint sets
in the member's own slot. ``liked`` (post ids) is added before a like and removed after an
unlike; ``commented`` (``<post id> <comment id>``) is added before a comment (the request's
one extra command, in the member's slot, each). ``following-seen``, ``followers-seen`` and
``paired`` name whom the member's version keys name, added by FOLLOW_SIDE and PAIR_SIDE in
the same script as the version. An entry is written with or before its record, so erasure
never misses one; an entry whose record went (a post deleted) is skipped, changing nothing.
Erasure costs in proportion to what the member touched, not to the size of the store.
"""
from __future__ import annotations

import json

from services.feed import store as keys
from shared.bus.consumer import Effects


READERS_PER_ROUND = 500


def _take_out_of_timelines(cache, member: str, readers: set[str]) -> None:
    """Every entry of ``member``'s posts out of the timelines of ``readers``, read whole (each is
    capped): the posts they hold now, and also ones deleted after their fan-out, which the
    store no longer lists. Two pipelines per ``READERS_PER_ROUND`` readers, a command a key."""
    ordered = sorted(readers)
    for start in range(0, len(ordered), READERS_PER_ROUND):
        chunk = ordered[start:start + READERS_PER_ROUND]
        with cache.pipeline(transaction=False) as pipe:
            for reader in chunk:
                pipe.zrange(keys.timeline(reader), 0, -1)
            held = pipe.execute()
        with cache.pipeline(transaction=False) as pipe:
            for reader, entries in zip(chunk, held):
                theirs = [e for e in entries if e != keys.LIVE and keys.author_of(e) == member]
                if theirs:
                    pipe.zrem(keys.timeline(reader), *theirs)
            pipe.execute()


def erase(member: str, fx: Effects) -> None:
    """Queue the erasure of everything the feed store and timeline cache hold of ``member``."""
    store, tx, cache = fx.store, fx.tx, fx.extra["cache"]
    own = store.zrange(keys.posts(member), 0, -1)
    # Who may hold the member's posts in their timeline: whom fan-out writes to.
    audience = set(store.zrange(keys.followers(member), 0, -1)) | set(store.smembers(keys.connections(member)))
    following = set(store.zrange(keys.following(member), 0, -1)) | store.smembers(keys.following_seen(member))
    followers = audience | store.smembers(keys.followers_seen(member))
    pairs = (set(store.smembers(keys.connections(member))) | set(store.smembers(keys.hidden(member)))
             | set(store.zrange(keys.disconnections(member), 0, -1))
             | store.smembers(keys.paired(member)))

    for post_id in own:
        for reshare in store.smembers(keys.resharers(post_id)):
            # Others' reshares stay theirs, but no longer point at a post that is gone.
            tx.hset(keys.post(reshare), "reshare_of", "")
        original = store.hget(keys.post(post_id), "reshare_of")
        if original and keys.author_of(original) != member:
            keys.RESHARED(tx, pipe=tx, keys={"post": keys.post(original), "resharers": keys.resharers(original)},
                          reshare_id=post_id, delta=-1)
        # Others' footprints name the post (its id carries the author's): they go with it.
        for liker in store.smembers(keys.likers(post_id)):
            tx.srem(keys.liked(liker), post_id)
        for comment_id, raw in store.hgetall(keys.comment_bodies(post_id)).items():
            tx.srem(keys.commented(json.loads(raw)["author"]), f"{post_id} {comment_id}")
        tx.delete(keys.post(post_id), keys.likers(post_id), keys.comments(post_id),
                  keys.comment_bodies(post_id), keys.resharers(post_id))
    _take_out_of_timelines(cache, member, audience | followers)
    cache.delete(keys.timeline(member))

    for post_id in store.smembers(keys.liked(member)):
        if keys.author_of(post_id) != member:  # its own posts went whole above
            keys.ERASE_LIKE(tx, pipe=tx, keys={"post": keys.post(post_id), "likers": keys.likers(post_id)},
                            member=member)
    by_post: dict[str, list[str]] = {}
    for entry in store.smembers(keys.commented(member)):
        post_id, _, comment_id = entry.rpartition(" ")
        if keys.author_of(post_id) != member:
            by_post.setdefault(post_id, []).append(comment_id)
    for post_id, ids in by_post.items():
        keys.ERASE_COMMENTS(tx, pipe=tx, keys={"post": keys.post(post_id), "comments": keys.comments(post_id),
                                               "comment_bodies": keys.comment_bodies(post_id)}, ids=sorted(ids))

    for followee in following:
        tx.zrem(keys.followers(followee), member)
        tx.srem(keys.followers_seen(followee), member)
        tx.delete(keys.follower_version(followee, member))
        tx.delete(keys.follow_version(member, followee))
    for follower in followers:
        tx.zrem(keys.following(follower), member)
        tx.srem(keys.following_seen(follower), member)
        tx.delete(keys.follow_version(follower, member))
        tx.delete(keys.follower_version(member, follower))
    for other in pairs:
        tx.srem(keys.connections(other), member)
        tx.srem(keys.hidden(other), member)
        tx.zrem(keys.disconnections(other), member)
        tx.srem(keys.paired(other), member)
        tx.delete(keys.pair_version(other, member))
        tx.delete(keys.pair_version(member, other))
    for copy in keys.all_high_follower_authors():
        tx.zrem(copy, member)
    tx.delete(keys.posts(member), keys.public_posts(member), keys.followers(member), keys.following(member),
              keys.connections(member), keys.hidden(member), keys.disconnections(member), keys.liked(member),
              keys.commented(member), keys.following_seen(member), keys.followers_seen(member), keys.paired(member))
