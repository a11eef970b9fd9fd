"""Fan-out on write: who a new post reaches, and the batches that spread the work.

A post reaches its author and its audience (see ``audience.audience``). An author above
``fanout_threshold`` followers is not fanned out: readers merge their posts at read time.
The fan-out handler writes up to ``fanout_inline_limit`` members itself (one script call
per shard and one pipeline per cache node, see ``Timelines.fan_out``); the rest of a bigger
audience is cut into ``fanout.batch`` events of ``fanout_batch_size`` members on the
partitioned ``feed.fanout`` topic, so several worker processes share one big post (worth
it when the cache is a cluster whose nodes take writes in parallel).

The batches leave through the outbox, in the same transaction as the post.created
event's dedup marker: the plan and the batches are stored together or not at all, so a
worker killed at any point neither loses a batch nor needs Kafka acks inside a handler.
The price is one more hop (outbox → relay → Kafka), paid only by very large audiences.
"""
from __future__ import annotations

import redis
from marshmallow import ValidationError, fields

from services.feed import audience
from services.feed import store as keys
from shared.auth import MEMBER_ID
from shared.events import new_event
from shared.events.catalogue import EventData, EventType, Member, PostId, Time, register
from shared.settings import Settings


class MemberList(fields.Field):
    """A list of member ids, checked in one pass: a batch holds a thousand of them, and a
    field per element would cost more than writing the timelines."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list) or not all(isinstance(m, str) and MEMBER_ID.fullmatch(m) for m in value):
            raise ValidationError("Must be a list of member ids.")
        return value

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class FanoutBatch(EventData):
    post_id = PostId()
    author = Member()
    created_at = Time()
    created_ms = fields.Integer(required=True)
    batch = fields.Integer(required=True)
    members = MemberList(required=True)


FANOUT_BATCH = register(EventType(
    "feed", "fanout.batch", 1, FanoutBatch,
    key=lambda d: f"{d['post_id']}#{d['batch']}",  # spread one post's batches over the partitions
    subject=lambda d: d["post_id"], topic_name="feed.fanout"))


def plan(store: redis.Redis, settings: Settings, author: str, visibility: str) -> list[str] | None:
    """The members a post must be written to besides its author; ``None`` for a high-follower author.

    The whole audience in one command (one consistent snapshot: a follower set read in
    rank ranges could shift under an unfollow and skip someone).
    """
    if audience.follower_count(store, author) > settings.fanout_threshold:
        return None
    return audience.audience(store, author, visibility)


def batches(data: dict, members: list[str], size: int, first: int = 0) -> list:
    """``fanout.batch`` events covering ``members``, ``size`` at a time, numbered from ``first``."""
    return [new_event("feed", "fanout.batch", {
        "post_id": data["post_id"], "author": data["author"], "created_at": data["created_at"],
        "created_ms": data["created_ms"], "batch": first + i, "members": members[start:start + size]})
        for i, start in enumerate(range(0, len(members), size))]


def post_exists(store: redis.Redis, post_id: str) -> bool:
    return bool(store.exists(keys.post(post_id)))
