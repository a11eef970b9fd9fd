"""The rules of following, as plain functions over the follows store."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from services.follows import store as keys
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.problems import Invalid


@dataclass(frozen=True)
class Follow:
    follower: str
    followee: str
    since_ms: int
    notify_on_post: bool


def follow(store: redis.Redis, outbox: Outbox, follower: str, followee: str,
           notify_on_post: bool = False, reason: str = "explicit") -> tuple[Follow, bool]:
    """Make ``follower`` follow ``followee`` (idempotent). Returns the follow and whether it is new."""
    if follower == followee:
        raise Invalid({"member": ["A member cannot follow themselves."]}, code="cannot_follow_self")
    with store.pipeline(transaction=True) as tx:
        while True:
            try:
                tx.watch(keys.following(follower))
                since = tx.zscore(keys.following(follower), followee)
                tx.multi()
                if since is not None:
                    tx.execute()
                    alert = store.sismember(keys.alerts(follower), followee)
                    return Follow(follower, followee, int(since), bool(alert)), False
                at = now_ms()
                tx.zadd(keys.following(follower), {followee: at})
                tx.zadd(keys.followers(followee), {follower: at})
                if notify_on_post:
                    tx.sadd(keys.alerts(follower), followee)
                outbox.add(tx, new_event("follows", "follow.created", {
                    "follower": follower, "followee": followee, "reason": reason,
                    "notify_on_post": notify_on_post, "since": rfc3339(at)}))
                tx.execute()
                return Follow(follower, followee, at, notify_on_post), True
            except redis.WatchError:
                continue
