"""Posts, reshares, likes and comments: the rules, as plain functions over the feed store.

Who may see a post: its author; for a public post every member; for a connections-only
post the author's 1st-degree connections. A block hides each member from the other.
Where a post's existence would leak, a reader who may not see it gets 404.
"""
from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass

import redis

from services.feed import audience
from services.feed import store as keys
from shared.auth import MEMBER_ID
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.pages import zset_page
from shared.problems import Forbidden, Invalid, NotFound
from shared.store_client import read_many

EXCERPT = 200
_STAMP = re.compile(r"^[0-9a-z]{1,40}$")


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 3x, and a feed page makes 21
class Post:
    id: str
    author: str
    text: str
    visibility: str
    created_ms: int
    reshare_of: str | None
    likes: int
    comments: int
    reshares: int
    liked_by_me: bool

    def body(self) -> dict:
        return {"id": self.id, "author": self.author, "text": self.text, "visibility": self.visibility,
                "created_at": rfc3339(self.created_ms), "reshare_of": self.reshare_of, "likes": self.likes,
                "comments": self.comments, "reshares": self.reshares, "liked_by_me": self.liked_by_me}

    def json(self) -> str:
        """``body()`` as JSON, from the JSON of its immutable part kept per process (hot in feeds)."""
        head = _HEADS.get(self.id)
        if head is None:
            if len(_HEADS) >= _HEADS_MAX:
                _HEADS.clear()
            head = _HEADS[self.id] = json.dumps(
                {"id": self.id, "author": self.author, "text": self.text, "visibility": self.visibility,
                 "created_at": rfc3339(self.created_ms), "reshare_of": self.reshare_of}, separators=(",", ":"))[:-1]
        return (f'{head},"likes":{self.likes},"comments":{self.comments},"reshares":{self.reshares},'
                f'"liked_by_me":{"true" if self.liked_by_me else "false"}}}')


# Post id → the JSON of its fields that never change (no edits: a post is written once, then
# only its counters move), without the closing brace. Bounded like the token cache.
_HEADS: dict[str, str] = {}
_HEADS_MAX = 50_000


def page_json(posts: list[Post], next_cursor: str | None) -> str:
    """A page of posts as PostPageSchema's JSON, built from each post's cached JSON."""
    return '{"items":[%s],"next_cursor":%s}' % (",".join(p.json() for p in posts), json.dumps(next_cursor))


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


# Posts of one millisecond sort by id (the score ties): a per-process sequence before the
# random part keeps one process's posts of the same millisecond in the order they were made.
_SEQUENCE = itertools.count()


def new_post_id(author: str, at_ms: int) -> str:
    return f"{author}~{_base36(at_ms)}{next(_SEQUENCE) % 0x10000:04x}{os.urandom(3).hex()}"


def is_post_id(value: str) -> bool:
    author, sep, stamp = value.partition("~")
    return bool(sep) and MEMBER_ID.fullmatch(author) is not None and _STAMP.fullmatch(stamp) is not None


def _missing(post_id: str) -> NotFound:
    return NotFound(f"No post {post_id!r} that you may see.", code="post_not_found")


# --- reading ----------------------------------------------------------------------------


def _as_seen_by(reader: str, post_id: str, author: str, fields: list, liked: int, relation: tuple,
                in_feed: bool) -> Post | None:
    """A post from its hash's fields, or ``None`` when ``reader`` may not see it (or it is deleted)."""
    created, text, visibility, reshare_of, likes, comments, reshares = fields
    if created is None:
        return None  # deleted, or never was
    connected, hidden, followed = relation
    if author != reader and (hidden or (visibility != "public" and not connected) or (in_feed and not followed)):
        return None
    return Post(post_id, author, text, visibility, int(created), reshare_of or None, int(likes or 0),
                int(comments or 0), int(reshares or 0), bool(liked))


def _post_reads(reader: str, post_ids: list[str]) -> tuple[list[tuple], list[str], list[str]]:
    """The reads of ``post_ids`` as ``reader`` sees them, for ``read_many``; with each post's
    author and the distinct authors.

    Every command touches one key: a post's (its author's slot) or the reader's (the reader's
    slot): each post's hash and whether its likers set (the like's own record) holds the
    reader, then the reader's relationships to the authors."""
    post_authors = [keys.author_of(p) for p in post_ids]
    authors = list(dict.fromkeys(post_authors))
    commands: list[tuple] = []
    for post_id in post_ids:
        post_key, likers_key = keys.post_read_keys(post_id)
        commands.append(("HMGET", post_key, *keys.POST_FIELDS))
        commands.append(("SISMEMBER", likers_key, reader))
    commands.append(("SMISMEMBER", keys.connections(reader), *authors))
    commands.append(("SMISMEMBER", keys.hidden(reader), *authors))
    commands.append(("ZMSCORE", keys.following(reader), *authors))
    return commands, post_authors, authors


def _read_posts(replies: list, reader: str, post_ids: list[str], post_authors: list[str], authors: list[str],
                in_feed: bool) -> list[Post | None]:
    """The posts of ``_post_reads``'s replies (``replies`` starts with them)."""
    n = len(post_ids)
    connected, hidden, followed = replies[2 * n:2 * n + 3]
    relation = {a: (connected[i], hidden[i], followed[i] is not None) for i, a in enumerate(authors)}
    return [_as_seen_by(reader, post_id, author, replies[2 * i], replies[2 * i + 1], relation[author], in_feed)
            for i, (post_id, author) in enumerate(zip(post_ids, post_authors))]


def hydrate(store: redis.Redis, reader: str, post_ids: list[str], in_feed: bool = False) -> list[Post | None]:
    """The posts ``post_ids`` as ``reader`` sees them, ``None`` where they may not (or deleted).

    One round trip (``store_client.read_many``): the posts, the reader's likes (each post's
    likers set: the like's own record) and the reader's relationships to their authors.
    ``in_feed`` also requires that the reader follows the author (or is it).
    """
    if not post_ids:
        return []
    commands, post_authors, authors = _post_reads(reader, post_ids)
    return _read_posts(read_many(store, commands), reader, post_ids, post_authors, authors, in_feed)


def feed_window(store: redis.Redis, reader: str, max_score: float | str, size: int,
                timeline_ids: list[str]) -> tuple[list[list[tuple[str, float]]], dict[str, Post | None]]:
    """One window of ``reader``'s home feed.

    Returns the ``size`` newest posts up to ``max_score`` of each high-follower author the
    reader follows (as (post id, score) lists), and every post of the window, from the
    timeline and from those authors, as the reader sees it in their feed (``None`` if not).
    One round trip for the timeline's posts and which high-follower authors the reader
    follows (the copy of that set in the reader's shard); two more only when they follow
    any: those authors' posts, then those posts.
    """
    commands: list[tuple] = [("ZINTER", 2, keys.following(reader), keys.high_follower_authors(keys.shard(reader)))]
    post_authors: list[str] = []
    authors: list[str] = []
    if timeline_ids:
        reads, post_authors, authors = _post_reads(reader, timeline_ids)
        commands += reads
    replies = read_many(store, commands)
    followed_high = replies[0]
    posts = dict(zip(timeline_ids, _read_posts(replies[1:], reader, timeline_ids, post_authors, authors, True)
                     if timeline_ids else []))
    if not followed_high:
        return [], posts
    with store.pipeline(transaction=False) as pipe:
        for author in followed_high:
            pipe.zrevrangebyscore(keys.posts(author), max_score, "-inf", start=0, num=size, withscores=True)
        high = pipe.execute()
    more = [post_id for source in high for post_id, _ in source if post_id not in posts]
    posts.update(zip(more, hydrate(store, reader, more, in_feed=True)))
    return high, posts


def get(store: redis.Redis, reader: str, post_id: str) -> Post:
    """The post, or 404 when it is deleted or ``reader`` may not see it."""
    if not is_post_id(post_id):
        raise _missing(post_id)
    found = hydrate(store, reader, [post_id])[0]
    if found is None:
        raise _missing(post_id)
    return found


def member_posts(store: redis.Redis, reader: str, author: str, limit: int,
                 cursor: str | None) -> tuple[list[Post], str | None]:
    """``author``'s posts that ``reader`` may see, newest first."""
    if reader != author and store.sismember(keys.hidden(reader), author):
        return [], None
    everything = reader == author or store.sismember(keys.connections(reader), author)
    key = keys.posts(author) if everything else keys.public_posts(author)
    page, next_cursor = zset_page(store, key, limit, cursor)
    posts = [p for p in hydrate(store, reader, [post_id for post_id, _ in page]) if p is not None]
    return posts, next_cursor


# --- writing ----------------------------------------------------------------------------


def publish(store: redis.Redis, outbox: Outbox, author: str, text: str, visibility: str = "public",
            reshare_of: str | None = None) -> Post:
    """Store a post and its ``post.created`` event in one transaction.

    A reshare points at a public post the author may see; a connections-only post cannot
    be reshared (422 ``reshare_not_allowed``).
    """
    original_author = None
    if reshare_of is not None:
        original = hydrate(store, author, [reshare_of])[0] if is_post_id(reshare_of) else None
        if original is None:
            raise Invalid({"reshare_of": ["No post with this id that you may see."]}, code="reshared_post_not_found")
        if original.visibility != "public":
            raise Invalid({"reshare_of": ["A connections-only post cannot be reshared."]},
                          code="reshare_not_allowed")
        original_author = original.author
    at = now_ms()
    post_id = new_post_id(author, at)
    event = new_event("feed", "post.created", {
        "post_id": post_id, "author": author, "visibility": visibility, "created_at": rfc3339(at),
        "reshare_of": reshare_of, "reshare_of_author": original_author, "excerpt": text[:EXCERPT],
        # What the feed knows, as the post is stored, of who is no longer a connection: read
        # with the post, a consumer whose own replica is behind shows it to none of them.
        "disconnected": audience.disconnected(store, author) if visibility == "connections" else []})
    fields = {"author": author, "text": text, "visibility": visibility, "created_ms": at,
              "reshare_of": reshare_of or "", "likes": 0, "comments": 0, "reshares": 0}
    # The post and its author's lists share the author's slot, with the outbox entry: one
    # MULTI/EXEC (a transaction, not a script, so that an idempotent request's mark joins it).
    with store.pipeline(transaction=True) as tx:
        tx.hset(keys.post(post_id), mapping=fields)
        tx.zadd(keys.posts(author), {post_id: at})
        if visibility == "public":
            tx.zadd(keys.public_posts(author), {post_id: at})
        outbox.add(tx, event, tag=keys.post_shard(post_id))
        # Followers wait for it: the relays are woken (relayed now, not after an idle relay's
        # wait), in the same EXEC where the store allows it.
        woken = outbox.wake_with(tx, store)
        tx.execute()
    if not woken:
        outbox.wake(store)
    if reshare_of is not None:
        # The original's count, in the original's slot: counted now for the author's next read,
        # and again (idempotently, by the reshare's id) by the consumer of post.created.
        count_reshare(store, reshare_of, post_id, 1)
    return Post(post_id, author, text, visibility, at, reshare_of, 0, 0, 0, False)


def count_reshare(store: redis.Redis, original: str, reshare_id: str, delta: int) -> str:
    """Count (``delta`` 1) or uncount (-1) the reshare ``reshare_id`` of ``original`` once; a
    deleted original is left deleted. Returns the RESHARED script's word."""
    return keys.RESHARED(store, keys={"post": keys.post(original), "resharers": keys.resharers(original)},
                         reshare_id=reshare_id, delta=delta)


def delete(store: redis.Redis, outbox: Outbox, reader: str, post_id: str) -> None:
    """The author deletes their post: 404 if ``reader`` cannot see it, 403 if not theirs."""
    post = get(store, reader, post_id)
    if post.author != reader:
        raise Forbidden("Only the author may delete a post.", code="not_post_author")
    event = new_event("feed", "post.deleted", {"post_id": post_id, "author": reader, "at": rfc3339(now_ms())})
    # Who liked or commented on it (the post's slot), whose footprints name it (the post id
    # carries the author's): they go with it, else they would outlive the author's account.
    with store.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.likers(post_id))
        pipe.hgetall(keys.comment_bodies(post_id))
        likers, bodies = pipe.execute()
    result = keys.run(keys.DELETE_POST, store, keys={
        "post": keys.post(post_id), "likers": keys.likers(post_id), "comments": keys.comments(post_id),
        "comment_bodies": keys.comment_bodies(post_id), "resharers": keys.resharers(post_id),
        "posts": keys.posts(reader), "public_posts": keys.public_posts(reader),
        "outbox": outbox.key_for(keys.post_shard(post_id))}, post_id=post_id, event=outbox.xadd_args(event))
    if result == "not_found":
        raise _missing(post_id)  # deleted meanwhile
    if likers or bodies:
        with store.pipeline(transaction=False) as pipe:  # one command a member, each in their slot
            for liker in likers:
                pipe.srem(keys.liked(liker), post_id)
            for comment_id, raw in bodies.items():
                pipe.srem(keys.commented(json.loads(raw)["author"]), f"{post_id} {comment_id}")
            pipe.execute()
    if post.reshare_of:
        count_reshare(store, post.reshare_of, post_id, -1)


def set_like(store: redis.Redis, outbox: Outbox, reader: str, post_id: str, like: bool) -> None:
    """Like (or unlike) a post ``reader`` may see; repeating it changes nothing."""
    post = get(store, reader, post_id)
    name = "post.liked" if like else "post.unliked"
    event = new_event("feed", name, {"post_id": post_id, "author": post.author, "actor": reader,
                                     "at": rfc3339(now_ms())})
    if like:  # the footprint (reader's slot) before the like, so erasure never misses one
        store.sadd(keys.liked(reader), post_id)
    result = keys.run(keys.LIKE, store, keys={"post": keys.post(post_id), "likers": keys.likers(post_id),
                                              "outbox": outbox.key_for(keys.post_shard(post_id))},
                      member=reader, delta=1 if like else -1, event=outbox.xadd_args(event))
    if not like or result == "not_found":  # after: a crash between leaves an entry erasure skips
        store.srem(keys.liked(reader), post_id)
    if result == "not_found":
        raise _missing(post_id)


@dataclass(frozen=True)
class Comment:
    id: str
    post_id: str
    author: str
    text: str
    created_ms: int

    def body(self) -> dict:
        return {"id": self.id, "post_id": self.post_id, "author": self.author, "text": self.text,
                "created_at": rfc3339(self.created_ms)}


def add_comment(store: redis.Redis, outbox: Outbox, reader: str, post_id: str, text: str) -> Comment:
    """Comment on a post ``reader`` may see; the count and the event move with it."""
    post = get(store, reader, post_id)
    at = now_ms()
    comment = Comment(f"{_base36(at)}{os.urandom(4).hex()}", post_id, reader, text, at)
    event = new_event("feed", "comment.added", {"comment_id": comment.id, "post_id": post_id,
                                                "author": post.author, "commenter": reader,
                                                "excerpt": text[:EXCERPT], "at": rfc3339(at)})
    # The footprint (commenter's slot) before the comment, so erasure never misses one.
    store.sadd(keys.commented(reader), f"{post_id} {comment.id}")
    # Every key in the post's slot, with the outbox entry; a transaction (not a script) so that
    # an idempotent request's mark joins it.
    with store.pipeline(transaction=True) as tx:
        while True:
            try:
                tx.watch(keys.post(post_id))
                if not tx.exists(keys.post(post_id)):
                    raise _missing(post_id)
                tx.multi()
                tx.hset(keys.comment_bodies(post_id), comment.id, json.dumps(comment.body()))
                tx.zadd(keys.comments(post_id), {comment.id: at})
                tx.hincrby(keys.post(post_id), "comments", 1)
                outbox.add(tx, event, tag=keys.post_shard(post_id))
                tx.execute()
                return comment
            except redis.WatchError:
                continue


def comment(store: redis.Redis, post_id: str, comment_id: str) -> dict:
    """One stored comment, as the API shows it."""
    raw = store.hget(keys.comment_bodies(post_id), comment_id)
    if raw is None:
        raise NotFound("No such comment.", code="comment_not_found")
    return json.loads(raw)


def comments_page(store: redis.Redis, reader: str, post_id: str, limit: int,
                  cursor: str | None) -> tuple[list[dict], str | None]:
    """Comments on a post ``reader`` may see, newest first."""
    get(store, reader, post_id)
    page, next_cursor = zset_page(store, keys.comments(post_id), limit, cursor)
    if not page:
        return [], next_cursor
    bodies = store.hmget(keys.comment_bodies(post_id), [cid for cid, _ in page])
    return [json.loads(b) for b in bodies if b], next_cursor
