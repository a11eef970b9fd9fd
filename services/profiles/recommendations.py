"""Recommendations (PRODUCT.md: what only connections give): a 1st-degree connection writes
one, pending until the recipient accepts it (it then shows in their ``full`` view) or hides it.

A recommendation's record lives in its recipient's shard, beside the recipient's list of those
received and their replica of connections, so the write checks the connection and stores the
record, the list entry and the event in one script. Its id (a uuid4 hex, as the event schema
wants) is drawn until it falls in that shard, so the record is found from the id alone. The
author's list of those given is a projection the worker keeps from ``recommendation.written``:
it may lag the write by milliseconds.

Only the recipient decides: the author asking is told 403 ``not_recipient`` (they know it
exists, it is in their list); anyone else 404 ``recommendation_not_found``, learning nothing of
who recommends whom.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

from services.profiles import store as scripts
from services.profiles.profiles import is_active, not_found, profile_required
from services.profiles.store import Keys
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.events.catalogue import EXCERPT_MAX, HEX_ID
from shared.pages import zset_page
from shared.problems import Forbidden, Invalid, NotFound

TEXT_MAX = 3000
RELATIONSHIP_MAX = 100
STATUSES = ("pending", "accepted", "hidden")


class RecommendationNotFound(NotFound):
    code = "recommendation_not_found"


@dataclass(frozen=True)
class Recommendation:
    id: str
    author: str
    recipient: str
    relationship: str
    text: str
    status: str
    written_ms: int
    decided_ms: int | None


def new_id(keys: Keys, recipient: str) -> str:
    """A uuid4 hex in ``recipient``'s shard (about ``shards`` draws, some microseconds)."""
    wanted = keys.tag(recipient)
    while True:
        candidate = uuid.uuid4().hex
        if keys.tag(candidate) == wanted:
            return candidate


def _event(name: str, rid: str, author: str, recipient: str, relationship: str, text: str, at_ms: int):
    return new_event("profiles", name, {"recommendation_id": rid, "author": author, "recipient": recipient,
                                        "relationship": relationship, "excerpt": text[:EXCERPT_MAX],
                                        "at": rfc3339(at_ms)})


def write(store: redis.Redis, keys: Keys, outbox: Outbox, author: str, recipient: str, relationship: str,
          text: str) -> Recommendation:
    """``author`` recommends ``recipient``: pending. 404 ``member_not_found`` (no such member, closed,
    or a block either way), 403 ``not_connected`` unless they are 1st-degree connections."""
    if author == recipient:
        raise Invalid({"member_id": ["A member cannot recommend themselves."]}, code="cannot_recommend_self")
    if not is_active(store, keys, author):
        raise profile_required()
    rid, now = new_id(keys, recipient), now_ms()
    fields = outbox.fields(_event("recommendation.written", rid, author, recipient, relationship, text, now))
    outcome = scripts.WRITE_RECOMMENDATION(
        store, keys={"recipient": keys.member(recipient), "connections": keys.connections(recipient),
                     "blocks": keys.blocks(recipient), "blocked_by": keys.blocked_by(recipient),
                     "record": keys.recommendation(rid), "received": keys.received(recipient),
                     "outbox": outbox.key_for(keys.tag(recipient))},
        author=author, recipient_id=recipient, id=rid, relationship=relationship, text=text, now=now,
        topic=fields["topic"], event_key=fields["key"], event=fields["value"])
    if outcome == "not_found":
        raise not_found(recipient)
    if outcome == "not_connected":
        raise Forbidden(f"Only {recipient}'s 1st-degree connections can recommend them.", code="not_connected")
    if outcome == "exists":  # a uuid4 drawn twice: never in practice
        raise RuntimeError("recommendation id drawn twice")
    return Recommendation(rid, author, recipient, relationship, text, "pending", now, None)


def _from_record(rid: str, r: dict) -> Recommendation:
    return Recommendation(rid, r["author"], r["recipient"], r["relationship"], r["text"], r["status"],
                          int(r["written_at"]), int(r["decided_at"]) if r.get("decided_at") else None)


def decide(store: redis.Redis, keys: Keys, outbox: Outbox, caller: str, rid: str, status: str) -> Recommendation:
    """The recipient accepts or hides a recommendation (idempotent: an event only on a change)."""
    record = store.hgetall(keys.recommendation(rid)) if HEX_ID.fullmatch(rid) else None
    if not record:
        raise RecommendationNotFound("No such recommendation.")
    if record["recipient"] != caller:
        if record["author"] == caller:
            raise Forbidden("Only the recipient accepts or hides a recommendation.", code="not_recipient")
        raise RecommendationNotFound("No such recommendation.")
    now = now_ms()
    name = "recommendation.accepted" if status == "accepted" else "recommendation.hidden"
    fields = outbox.fields(_event(name, rid, record["author"], caller, record["relationship"], record["text"], now))
    outcome = scripts.DECIDE_RECOMMENDATION(
        store, keys={"record": keys.recommendation(rid), "received": keys.received(caller),
                     "accepted": keys.accepted(caller), "outbox": outbox.key_for(keys.tag(caller))},
        id=rid, status=status, now=now, topic=fields["topic"], event_key=fields["key"], event=fields["value"])
    if outcome == "not_found":  # erased between the read and the script
        raise RecommendationNotFound("No such recommendation.")
    return _from_record(rid, store.hgetall(keys.recommendation(rid)) or {**record, "status": status})


def page(store: redis.Redis, keys: Keys, member: str, direction: str, limit: int,
         cursor: str | None) -> tuple[list[Recommendation], str | None]:
    """``member``'s recommendations received (every status: theirs to decide) or given, newest first."""
    key = keys.received(member) if direction == "received" else keys.given(member)
    items, next_cursor = zset_page(store, key, limit, cursor)
    with store.pipeline(transaction=False) as pipe:
        for rid, _ in items:
            pipe.hgetall(keys.recommendation(rid))
        records = pipe.execute() if items else []
    # A record erased with its recipient's account leaves an id in the author's list until the
    # worker's erasure reaches it: skipped here.
    return [_from_record(rid, r) for (rid, _), r in zip(items, records) if r], next_cursor

