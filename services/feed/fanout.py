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

import re

import redis
from marshmallow import ValidationError, fields

from services.feed import audience
from services.feed import store as keys
from shared.auth import MEMBER_ID
from shared.events import new_event
from shared.events.catalogue import EventData, EventType, Member, PostId, Time, register
from shared.settings import Settings


# A member id's rule (``MEMBER_ID``, anchored) repeated with a separator no member id holds: one
# match over the joined list instead of one per member, about a third of the time.
_ONE = MEMBER_ID.pattern.removeprefix("^").removesuffix("$")
_SEPARATOR = "\x00"
_JOINED = re.compile(f"(?:{_ONE})(?:{_SEPARATOR}(?:{_ONE}))*")
assert not re.fullmatch(_ONE, _SEPARATOR), "the separator must not be allowed in a member id"


def member_ids(value) -> bool:
    """Whether ``value`` is a list of member ids (each as ``MEMBER_ID`` wants it)."""
    if not isinstance(value, list):
        return False
    if not value:
        return True
    try:
        joined = _SEPARATOR.join(value)
    except TypeError:  # an element that is not a string
        return False
    # As many separators as joints: none inside a member, so the match sees each member whole.
    return joined.count(_SEPARATOR) == len(value) - 1 and _JOINED.fullmatch(joined) is not None


class MemberList(fields.Field):
    """A list of member ids, checked in one pass: a batch holds a thousand of them, and a
    field per element would cost more than writing the timelines."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not member_ids(value):
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
    key=lambda d: f"{d['post_id']}#{d['batch']}",
    # One post's batches in turn over the partitions: hashed, some partitions got three times as
    # many as others, and the worker holding the busiest finished the fan-out alone.
    spread=lambda d: d["batch"],
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
