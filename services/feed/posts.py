"""Posts, reshares, likes and comments: the rules, as plain functions over the feed store.

Who may see a post: its author; for a public post every member; for a connections-only
post the author's 1st-degree connections. A block hides each member from the other.
Where a post's existence would leak, a reader who may not see it gets 404.
"""
from __future__ import annotations

import functools
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


_ROW = len(keys.POST_FIELDS) + 4  # a post's values in a HYDRATE / FEED_WINDOW reply


@functools.lru_cache(maxsize=64)
def script(client: redis.Redis, source: str):
    """``source`` registered on ``client`` once (EVALSHA: the arguments, not the script, on the wire)."""
    return client.register_script(source)


def _as_seen_by(reader: str, post_id: str, row: list, in_feed: bool) -> Post | None:
    """A post from its HYDRATE row, or ``None`` when ``reader`` may not see it (or it is deleted)."""
    created, text, visibility, reshare_of, likes, comments, reshares, liked, connected, hidden, followed = row
    if created is None:
        return None  # deleted, or never was
    author = keys.author_of(post_id)
    if author != reader and (hidden or (visibility != "public" and not connected) or (in_feed and not followed)):
        return None
    return Post(post_id, author, text, visibility, int(created), reshare_of or None, int(likes or 0),
                int(comments or 0), int(reshares or 0), bool(liked))


def hydrate(store: redis.Redis, reader: str, post_ids: list[str], in_feed: bool = False) -> list[Post | None]:
    """The posts ``post_ids`` as ``reader`` sees them, ``None`` where they may not (or deleted).

    One round trip (a script): the posts, the reader's likes and the reader's relationships
    to their authors. ``in_feed`` also requires that the reader follows the author (or is it).
    """
    if not post_ids:
        return []
    authors = [keys.author_of(p) for p in post_ids]
    reply = script(store, keys.HYDRATE)(
        keys=[keys.connections(reader), keys.hidden(reader), keys.following(reader),
              *[keys.post(p) for p in post_ids], *[keys.likers(p) for p in post_ids]],
        args=[reader, *authors])
    return [_as_seen_by(reader, post_id, reply[i * _ROW:(i + 1) * _ROW], in_feed)
            for i, post_id in enumerate(post_ids)]


def feed_window(store: redis.Redis, reader: str, max_score: float | str, size: int,
                timeline_ids: list[str]) -> tuple[list[list[tuple[str, float]]], dict[str, Post | None]]:
    """One window of ``reader``'s home feed in one round trip (the FEED_WINDOW script).

    Returns the ``size`` newest posts up to ``max_score`` of each high-follower author the
    reader follows (as (post id, score) lists), and every post of the window, from the
    timeline and from those authors, as the reader sees it in their feed (``None`` if not).
    """
    sources, rows = script(store, keys.FEED_WINDOW)(
        keys=[keys.connections(reader), keys.hidden(reader), keys.following(reader), keys.HIGH_FOLLOWER_AUTHORS],
        args=[reader, max_score, size, "\n".join(timeline_ids)])
    high = [[(flat[j], float(flat[j + 1])) for j in range(0, len(flat), 2)] for flat in sources]
    ids = [*timeline_ids, *(post_id for source in high for post_id, _ in source)]
    posts = {post_id: _as_seen_by(reader, post_id, rows[i * _ROW:(i + 1) * _ROW], True)
             for i, post_id in enumerate(ids)}
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
    with store.pipeline(transaction=True) as tx:
        while True:
            try:
                if reshare_of is not None:
                    # The original must still exist when the reshare is written.
                    tx.watch(keys.post(reshare_of))
                    if not tx.exists(keys.post(reshare_of)):
                        raise Invalid({"reshare_of": ["No post with this id that you may see."]},
                                      code="reshared_post_not_found")
                tx.multi()
                tx.hset(keys.post(post_id), mapping=fields)
                tx.zadd(keys.posts(author), {post_id: at})
                if visibility == "public":
                    tx.zadd(keys.public_posts(author), {post_id: at})
                if reshare_of is not None:
                    tx.hincrby(keys.post(reshare_of), "reshares", 1)
                outbox.add(tx, event)
                tx.execute()
                break
            except redis.WatchError:
                continue
    return Post(post_id, author, text, visibility, at, reshare_of, 0, 0, 0, False)


def delete(store: redis.Redis, outbox: Outbox, reader: str, post_id: str) -> None:
    """The author deletes their post: 404 if ``reader`` cannot see it, 403 if not theirs."""
    post = get(store, reader, post_id)
    if post.author != reader:
        raise Forbidden("Only the author may delete a post.", code="not_post_author")
    event = new_event("feed", "post.deleted", {"post_id": post_id, "author": reader, "at": rfc3339(now_ms())})
    with store.pipeline(transaction=True) as tx:
        while True:
            try:
                tx.watch(keys.post(post_id))
                if not tx.exists(keys.post(post_id)):
                    raise _missing(post_id)  # deleted meanwhile
                tx.multi()
                tx.delete(keys.post(post_id), keys.likers(post_id), keys.comments(post_id),
                          keys.comment_bodies(post_id))
                tx.zrem(keys.posts(reader), post_id)
                tx.zrem(keys.public_posts(reader), post_id)
                outbox.add(tx, event)
                tx.execute()
                break
            except redis.WatchError:
                continue
    if post.reshare_of:
        # Best effort: the original may be gone already, and HINCRBY would recreate it.
        _decrement_if_exists(store, keys.post(post.reshare_of), "reshares")


_DECREMENT = "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HINCRBY', KEYS[1], ARGV[1], -1) end"


def _decrement_if_exists(store: redis.Redis, key: str, field: str) -> None:
    store.eval(_DECREMENT, 1, key, field)


def set_like(store: redis.Redis, outbox: Outbox, reader: str, post_id: str, like: bool) -> None:
    """Like (or unlike) a post ``reader`` may see; repeating it changes nothing."""
    post = get(store, reader, post_id)
    name = "post.liked" if like else "post.unliked"
    event = new_event("feed", name, {"post_id": post_id, "author": post.author, "actor": reader,
                                     "at": rfc3339(now_ms())})
    result = store.eval(keys.LIKE, 3, keys.post(post_id), keys.likers(post_id), outbox.key,
                        reader, "1" if like else "-1", *outbox.xadd_args(event))
    if result == -1:
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
                outbox.add(tx, event)
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
