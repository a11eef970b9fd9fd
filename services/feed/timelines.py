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


# Members per fan-out batch. A batch goes out as one script call per slot (a script touches one
# slot), all the calls of a node in one pipeline: with 64 shards a batch of 2,000 makes calls
# of about 30 timelines, each holding its node for some 60 µs, so feed reads interleave.
SCRIPT_BATCH = 2_000

# A node that moved its slots or went away under a batch's pipeline (a failover, a resharding).
TOPOLOGY_CHANGED = (redis.exceptions.MovedError, redis.exceptions.AskError, redis.ConnectionError,
                    redis.TimeoutError, redis.exceptions.ReadOnlyError)
TOPOLOGY_ATTEMPTS = 3


def by_node(cache, members: list[str]) -> dict:
    """The timelines of ``members`` grouped by the cluster node serving them, then by shard (one
    slot): {node: {shard tag: timeline keys}}. On one Redis node the only node is ``None``.

    Grouped by shard tag (a crc32 per member), the node looked up once per shard.
    """
    per_shard = keys.timelines_by_shard(members)
    if not hasattr(cache, "get_node_from_key"):  # not a RedisCluster client
        return {None: per_shard}
    groups: dict = {}
    for tag, timeline_keys in per_shard.items():
        groups.setdefault(cache.get_node_from_key(timeline_keys[0]), {})[tag] = timeline_keys
    return groups


def _pipeline(cache, node):
    """A non-transactional pipeline to ``node`` (``None``: the one node ``cache`` is)."""
    client = cache if node is None else node.redis_connection
    return client.pipeline(transaction=False)


class Timelines:
    """The cache's timelines: fan-out, windows, rebuilds."""

    def __init__(self, cache: redis.Redis, settings: Settings):
        self.cache = cache
        self.settings = settings

    @property
    def ttl_ms(self) -> int:
        return self.settings.inactive_days * 24 * 3600 * 1000

    def fan_out(self, members: list[str], entries: list[tuple[str, float]]) -> int:
        """Write ``entries`` (post id, score) into the live timelines of ``members``; returns how many.

        Members go ``SCRIPT_BATCH`` at a time; each batch's timelines are grouped by the node
        serving them and, within a node, by slot: one FAN_OUT call per slot, one pipeline per
        node (not a transaction: each timeline insert stands alone and is idempotent).
        """
        if not members or not entries:
            return 0
        tail: list = []
        for post_id, score in entries:
            tail += [score, post_id]
        written = 0
        for start in range(0, len(members), SCRIPT_BATCH):
            batch = members[start:start + SCRIPT_BATCH]
            for attempt in range(TOPOLOGY_ATTEMPTS):
                try:
                    written += sum(self._fan_out_to(node, list(per_shard.values()), tail)
                                   for node, per_shard in by_node(self.cache, batch).items())
                    break
                except TOPOLOGY_CHANGED as exc:
                    # The pipelines go to nodes straight, past the cluster client's own handling
                    # of a failover: ask the cluster for its map again and redo the batch (each
                    # insert is idempotent). Still failing: the caller's retry (503, the worker's).
                    nodes = getattr(self.cache, "nodes_manager", None)
                    if nodes is None or attempt == TOPOLOGY_ATTEMPTS - 1:
                        raise
                    log.warning("fan-out batch redone on the cluster's new map", error=repr(exc))
                    nodes.initialize()
        return written

    def _fan_out_to(self, node, groups: list[list[str]], tail: list) -> int:
        """FAN_OUT once per group of timelines (each of one shard), in one pipeline to ``node``.

        By SHA (a batch makes one call per shard: the script's text each time would be a third
        of the bytes sent), loaded where the node does not know it yet; without re-checking
        each key's slot, as a group's keys carry one shard tag by construction (``by_node``).
        """
        cap = self.settings.timeline_cap
        pipe = _pipeline(self.cache, node)
        for timeline_keys in groups:
            pipe.evalsha(keys.FAN_OUT.sha, len(timeline_keys), *timeline_keys, cap, *tail)
        replies = pipe.execute(raise_on_error=False)
        unknown = [g for g, r in zip(groups, replies) if isinstance(r, redis.exceptions.NoScriptError)]
        failed = [r for r in replies if isinstance(r, Exception) and not isinstance(r, redis.exceptions.NoScriptError)]
        if failed:
            raise failed[0]
        written = sum(r for r in replies if not isinstance(r, Exception))
        if unknown:  # a node that restarted, or never ran it: the text once, by EVAL
            pipe = _pipeline(self.cache, node)
            for timeline_keys in unknown:
                pipe.eval(keys.FAN_OUT.source, len(timeline_keys), *timeline_keys, cap, *tail)
            written += sum(pipe.execute())
        return written

    def window(self, member: str, max_score: float | str, count: int, touch: bool = False) -> list[str] | None:
        """The ``count`` newest entries of ``member``'s timeline up to ``max_score``, flat (post id,
        score); ``touch`` pushes its expiry back. ``None`` when the timeline does not exist."""
        return keys.TIMELINE_WINDOW(self.cache, keys={"timeline": keys.timeline(member)},
                                    ttl_ms=self.ttl_ms if touch else "", max_score=max_score, count=count)

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
        self._build(member, [])
        entries = rebuild_entries(store, member, self.settings)
        for start in range(0, len(entries), 500):
            self._build(member, [part for post_id, score in entries[start:start + 500] for part in (score, post_id)])

    def _build(self, member: str, flat: list) -> None:
        keys.BUILD(self.cache, keys={"timeline": keys.timeline(member)}, cap=self.settings.timeline_cap,
                   ttl_ms=self.ttl_ms, live=keys.LIVE, entries=flat)

    def backfill(self, store: redis.Redis, follower: str, followee: str, connected: bool) -> int:
        """Bring ``followee``'s recent posts visible to ``follower`` (all of them between
        connections, else the public ones) into their live timeline."""
        source = keys.posts(followee) if connected else keys.public_posts(followee)
        return self.fan_out([follower], store.zrevrange(source, 0, self.settings.backfill_limit - 1, withscores=True))

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
    timeline, with the expiry pushed back on the first) and one store pipeline (the posts'
    hydration, and which high-follower authors the reader follows), two more when they follow
    any (see ``posts.feed_window``).
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
