"""Timelines: fan-out on write, the read-time merge of high-follower authors, rebuilds.

A member's timeline is a sorted set in the cache (post ids by creation time, capped). It
is written by the fan-out worker, read by ``GET /v1/feed``, expires after
``inactive_days`` without a read (then fan-out skips the member) and is rebuilt from the
store on the next read, as it is after the cache was lost. The store stays the truth: a
read hydrates every post and drops whatever the reader may no longer see (deleted,
unfollowed, disconnected, blocked), so a stale timeline entry is never shown.
"""
from __future__ import annotations

import heapq

import redis

from services.feed import store as keys
from services.feed.posts import Post, feed_window, is_post_id
from shared.pages import decode_cursor, encode_cursor
from shared.logs import get_logger
from shared.settings import Settings

log = get_logger(__name__)


# Members per fan-out script call. One call holds the cache for its duration (about 2 µs a
# member): 2,000 keep that near 4 ms, so feed reads interleave, while the per-call cost
# (a round trip, building one string) stays a few percent of it.
SCRIPT_BATCH = 2_000


class Timelines:
    """The cache's timeline scripts, registered once per cache client."""

    def __init__(self, cache: redis.Redis, settings: Settings):
        self.cache = cache
        self.settings = settings
        self._fan_out = cache.register_script(keys.FAN_OUT)
        self._build = cache.register_script(keys.BUILD)
        self._window = cache.register_script(keys.TIMELINE_WINDOW)

    @property
    def ttl_ms(self) -> int:
        return self.settings.inactive_days * 24 * 3600 * 1000

    def fan_out(self, members: list[str], entries: list[tuple[str, float]]) -> int:
        """Write ``entries`` (post id, score) into the live timelines of ``members``; returns how many.

        Members go to the cache ``SCRIPT_BATCH`` at a time, every script call of one fan-out
        in one pipelined round trip.
        """
        if not members or not entries:
            return 0
        tail: list = []
        for post_id, score in entries:
            tail += [score, post_id]
        if len(members) <= SCRIPT_BATCH:
            return self._fan_out(args=[self.settings.timeline_cap, "\n".join(members), *tail])
        pipe = self.cache.pipeline(transaction=False)
        for start in range(0, len(members), SCRIPT_BATCH):
            self._fan_out(args=[self.settings.timeline_cap, "\n".join(members[start:start + SCRIPT_BATCH]), *tail],
                          client=pipe)
        return sum(pipe.execute())

    def window(self, member: str, max_score: float | str, count: int, touch: bool = False) -> list[str] | None:
        """The ``count`` newest entries of ``member``'s timeline up to ``max_score``, flat (post id,
        score); ``touch`` pushes its expiry back. ``None`` when the timeline does not exist."""
        return self._window(keys=[keys.timeline(member)], args=[self.ttl_ms if touch else "", max_score, count])

    def show_own_post(self, post: Post) -> None:
        """Put a new post in its author's own timeline at once: authors read their writes.

        The fan-out worker writes it again later, which changes nothing.
        """
        self.fan_out([post.author], [(post.id, post.created_ms)])

    def remove(self, member: str, post_ids: list[str]) -> None:
        if post_ids:
            self.cache.zrem(keys.timeline(member), *post_ids)

    def rebuild(self, store: redis.Redis, member: str) -> None:
        """Build ``member``'s timeline from the store: own posts and followees' visible posts."""
        # Mark the timeline live first: a post stored after the reads below is then fanned
        # out to it, and one stored before is in them. Nothing falls in between.
        self._build(keys=[keys.timeline(member)], args=[self.settings.timeline_cap, self.ttl_ms, keys.LIVE])
        entries = rebuild_entries(store, member, self.settings)
        for start in range(0, len(entries), 500):
            args: list = [self.settings.timeline_cap, self.ttl_ms, keys.LIVE]
            for post_id, score in entries[start:start + 500]:
                args += [score, post_id]
            self._build(keys=[keys.timeline(member)], args=args)

    def backfill(self, store: redis.Redis, follower: str, followee: str, connected: bool | None = None) -> int:
        """Bring ``followee``'s recent posts visible to ``follower`` into their live timeline."""
        last = self.settings.backfill_limit - 1
        if connected is None:  # both lists and the connection in one round trip
            with store.pipeline(transaction=False) as pipe:
                pipe.sismember(keys.connections(follower), followee)
                pipe.zrevrange(keys.posts(followee), 0, last, withscores=True)
                pipe.zrevrange(keys.public_posts(followee), 0, last, withscores=True)
                connected, every, public = pipe.execute()
            recent = every if connected else public
        else:
            source = keys.posts(followee) if connected else keys.public_posts(followee)
            recent = store.zrevrange(source, 0, last, withscores=True)
        return self.fan_out([follower], recent)

    def take_out(self, store: redis.Redis, member: str, author: str) -> None:
        """Drop ``author``'s recent posts from ``member``'s timeline (reads filter them anyway)."""
        self.remove(member, store.zrevrange(keys.posts(author), 0, self.settings.timeline_cap - 1))


def rebuild_entries(store: redis.Redis, member: str, settings: Settings) -> list[tuple[str, float]]:
    """The newest ``timeline_cap`` (post id, time) entries ``member``'s feed is made of."""
    followees = store.zrange(keys.following(member), 0, -1)
    connections = store.smembers(keys.connections(member))
    hidden = store.smembers(keys.hidden(member))
    sources = [keys.posts(member)]
    for followee in followees:
        if followee in hidden:
            continue
        sources.append(keys.posts(followee) if followee in connections else keys.public_posts(followee))
    per_source = min(settings.timeline_cap, settings.backfill_limit)
    candidates: list[tuple[str, float]] = []
    for start in range(0, len(sources), 500):
        pipe = store.pipeline(transaction=False)
        for key in sources[start:start + 500]:
            pipe.zrevrange(key, 0, per_source - 1, withscores=True)
        for reply in pipe.execute():
            candidates.extend(reply)
    return heapq.nlargest(settings.timeline_cap, candidates, key=lambda e: (e[1], e[0]))


def read_feed(store: redis.Redis, timelines: Timelines, reader: str, limit: int,
              cursor: str | None) -> tuple[list[Post], str | None]:
    """A page of ``reader``'s home feed, newest first, after ``cursor``.

    Merges the timeline with the recent posts of the high-follower authors the reader
    follows and keeps what the reader may see: per window, one cache round trip (the
    timeline, with the expiry pushed back on the first) and one store round trip (the
    authors' posts and the hydration of all of them, see ``posts.feed_window``).
    """
    after = decode_cursor(cursor) if cursor else None
    window = limit + 1  # a short page after filtering asks for the next window
    shown: list[Post] = []
    seen: set[str] = set()
    first = True
    while True:
        max_score = after[0] if after else "+inf"
        flat = timelines.window(reader, max_score, window + 1, touch=first)
        if flat is None:
            # No timeline (inactive, or the cache lost): rebuilt from the store, then read.
            timelines.rebuild(store, reader)
            flat = timelines.window(reader, max_score, window + 1)
        first = False
        timeline = _readable(timelines, reader, flat)
        high, found = feed_window(store, reader, max_score, window,
                                  [post_id for post_id, _ in timeline if post_id != keys.LIVE])
        candidates, boundary = _merge([timeline, *high], after, window)
        for post_id, _ in candidates:
            if post_id not in seen:
                seen.add(post_id)
                if found.get(post_id) is not None:
                    shown.append(found[post_id])
        if len(shown) > limit or boundary is None:
            break
        if after is not None and boundary >= after:  # no progress (cannot happen with ms scores)
            break
        after = boundary
    has_more = len(shown) > limit
    shown = shown[:limit]
    next_cursor = encode_cursor(shown[-1].created_ms, shown[-1].id) if has_more and shown else None
    return shown, next_cursor


def _readable(timelines: Timelines, reader: str, flat: list[str]) -> list[tuple[str, float]]:
    """The (post id, score) entries of a timeline window that can be read; the others leave the timeline.

    The cache is written only by this service, but an entry that is not a post id (a bad
    batch, a hand edit) must neither break the read nor stay to break the next one.
    """
    timeline, broken = [], []
    for i in range(0, len(flat), 2):
        entry = flat[i]
        if entry == keys.LIVE or is_post_id(entry):
            timeline.append((entry, float(flat[i + 1])))
        else:
            broken.append(entry)
    if broken:
        timelines.remove(reader, broken)
        log.warning("unreadable timeline entries removed", member=reader, count=len(broken))
    return timeline


def _merge(sources: list[list[tuple[str, float]]], after: tuple[float, str] | None,
           size: int) -> tuple[list[tuple[str, float]], tuple[float, str] | None]:
    """The next entries of each source (up to ``size`` each) after ``after``, merged newest first.

    Returns the entries it is sure of (newer than the end of every source that may have
    more), and where the next window starts (``None`` when every source is exhausted).
    """
    boundary = None
    merged: dict[str, float] = {}
    for source in sources:
        full = len(source) >= size
        entries = [(m, s) for m, s in source if m != keys.LIVE]
        if after is not None:
            entries = [(m, s) for m, s in entries if (s, m) < after]
        for m, s in entries:
            merged[m] = s
        if full and entries:
            last = min((s, m) for m, s in entries)
            boundary = last if boundary is None or last > boundary else boundary
    ordered = sorted(merged.items(), key=lambda e: (e[1], e[0]), reverse=True)
    if boundary is not None:
        ordered = [(m, s) for m, s in ordered if (s, m) >= boundary]
    return ordered, boundary
