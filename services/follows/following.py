"""The rules of following, as plain functions over the follows store.

Every change and the event it causes are written by one Lua script in the follower's slot
(``store.FOLLOW``, ``store.UNFOLLOW``), so a follow is never half-written and never slips past a
block. The followee's followers are a projection of the edges (``project_edge``), brought up
to date by the request at once and by the follows worker from follows.events (``project_current``).
The same functions serve the HTTP views and the connections-event handlers: those pass
their consumer transaction as ``client``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import redis
from redis.cluster import RedisCluster

from services.follows import store as keys
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.events.envelope import PENDING_VERSION
from shared.lua import run_by_sha
from shared.problems import Forbidden, Invalid
from shared.pages import zset_page

Client = redis.Redis | redis.client.Pipeline

_NO_EVENT = [""] * 6  # a script argument slot for an event that cannot arise


@dataclass(frozen=True)
class Follow:
    follower: str
    followee: str
    since_ms: int | None  # None: not following
    notify_on_post: bool

    @property
    def following(self) -> bool:
        return self.since_ms is not None


@dataclass(frozen=True)
class FollowStats:
    followers: int
    following: int

    @property
    def ratio(self) -> float | None:
        """followers / following, None when the member follows no one."""
        return round(self.followers / self.following, 4) if self.following else None


def _not_self(follower: str, followee: str) -> None:
    if follower == followee:
        raise Invalid({"member": ["A member cannot follow themselves."]}, code="cannot_follow_self")


def _follow_keys(outbox: Outbox, follower: str, followee: str) -> dict:
    return {"following": keys.following(follower), "alerts": keys.alerts(follower),
            "blocks": keys.blocks(follower), "blocked_by": keys.blocked_by(follower),
            "connections": keys.connections(follower), "outbox": outbox.key_for(keys.member_tag(follower)),
            "version": keys.follow_version(follower, followee), "followed": keys.followed(follower)}


def follow_args(outbox: Outbox, follower: str, followee: str, notify_on_post: bool | None,
                reason: str, at: int, restricted: bool = False) -> dict:
    """The FOLLOW script's arguments, with the events it may emit built (and validated) up front."""
    created = new_event("follows", "follow.created", {
        "follower": follower, "followee": followee, "reason": reason,
        "notify_on_post": bool(notify_on_post), "since": rfc3339(at), "version": PENDING_VERSION})
    updated = _NO_EVENT if notify_on_post is None else outbox.xadd_args(new_event("follows", "follow.updated", {
        "follower": follower, "followee": followee, "notify_on_post": notify_on_post, "at": rfc3339(at),
        "version": PENDING_VERSION}))
    notify = "" if notify_on_post is None else ("1" if notify_on_post else "0")
    return {"follower": follower, "followee": followee, "now": at, "notify": notify,
            "restricted": "1" if restricted else "0", "events": [*outbox.xadd_args(created), *updated]}


def _restricted(store: Client, followee: str) -> bool:
    """Whether only connections may follow ``followee`` (their setting, in their slot)."""
    return store.hget(keys.follow_setting(followee), "followers") == "connections"


def queue_followee_state(pipe: redis.client.Pipeline, entry_key: str, followee: str) -> None:
    """Queue the reads of ``followee_state`` on ``pipe``: ``followee``'s entry in the members
    replica (HGETALL of ``entry_key``) and their follow setting, both in the followee's slot."""
    pipe.hgetall(entry_key)
    pipe.hget(keys.follow_setting(followee), "followers")


def followee_state(replies: list) -> tuple[dict, bool]:
    """From the replies of ``queue_followee_state``: the followee's replica entry, and whether
    only connections may follow them."""
    entry, setting = replies
    return entry, setting == "connections"


def project_edge(store: redis.Redis, follower: str, followee: str, version: int, since: int | None) -> bool:
    """Bring ``followee``'s followers to the edge as the follower's script just wrote it (at
    ``version``; ``since`` None: not following), without reading it back. Returns whether it
    changed anything (a newer version already projected wins)."""
    return _project(store, follower, followee, version, since)


def _project(store: Client, follower: str, followee: str, version: int, since: int | None, pipe=None):
    reply = keys.PROJECT_FOLLOWER(store, keys={"followers": keys.followers(followee),
                                               "versions": keys.followers_version(followee)},
                                  follower=follower, version=version, since="" if since is None else since, pipe=pipe)
    return reply if pipe is not None else bool(reply)


def project_current(store: redis.Redis, tx: redis.client.Pipeline, follower: str, followee: str,
                    edge: tuple | None = None) -> None:
    """Queue on ``tx`` the projection of the edge ``follower`` → ``followee`` as it is now, read
    in the follower's slot (one MULTI; nothing when the edge has no version: never made, or
    erased with a closed account). The follows worker's way, for every event of the edge.
    ``edge``: (since, version) as ``edges_now`` read it for the batch, else it is read here."""
    if edge is None:
        with store.pipeline(transaction=True) as read:
            read.zscore(keys.following(follower), followee)
            read.get(keys.follow_version(follower, followee))
            edge = tuple(read.execute())
    since, version = edge
    if version is not None:
        _project(tx, follower, followee, int(version), None if since is None else int(float(since)), pipe=tx)


def edges_now(store: redis.Redis, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """(follower, followee) → (since, version) of each edge as it is now (None for what it has
    not), each read at one instant by ``EDGE_NOW`` in its follower's slot, all in one round trip
    (a Redis Cluster's pipeline runs no script: there, nothing; each handler reads its own)."""
    if isinstance(store, RedisCluster):
        return {}
    pairs = list(dict.fromkeys(pairs))
    replies = run_by_sha(store, [(keys.EDGE_NOW, {"following": keys.following(follower),
                                                  "version": keys.follow_version(follower, followee)},
                                  {"followee": followee}) for follower, followee in pairs])
    return {pair: tuple(None if value is None or value is False else value for value in reply)
            for pair, reply in zip(pairs, replies)}


def follow(store: redis.Redis, outbox: Outbox, follower: str, followee: str,
           notify_on_post: bool | None = None, restricted: bool | None = None) -> tuple[Follow, bool]:
    """Make ``follower`` follow ``followee`` explicitly (idempotent).

    ``notify_on_post`` None keeps an existing follow's post alerts (off for a new follow);
    a different value on an existing follow changes them and emits ``follow.updated``.
    Returns the follow and whether it is new. Refused (403) between blocked members, and
    for non-connections of a member whose follow setting is ``connections``; ``restricted``:
    that setting as the caller read it already (``followee_state``), else it is read here.
    """
    _not_self(follower, followee)
    if restricted is None:
        restricted = _restricted(store, followee)
    args = follow_args(outbox, follower, followee, notify_on_post, "explicit", now_ms(), restricted=restricted)
    outcome, since, alert, version = keys.FOLLOW(store, keys=_follow_keys(outbox, follower, followee), **args)
    if outcome == "refused":
        # Says nothing about who blocked whom: the blocked member learns nothing more.
        raise Forbidden("You cannot follow this member.", code="follow_refused")
    if outcome == "restricted":
        raise Forbidden("This member can be followed only by their connections.", code="followers_restricted")
    if outcome in ("created", "updated"):
        project_edge(store, follower, followee, int(version), int(float(since)))
    return Follow(follower, followee, int(float(since)), bool(int(alert))), outcome == "created"


def follow_quietly(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, follower: str, followee: str,
                   reason: str, at: int, restricted: bool | None = None) -> None:
    """Queue on ``tx`` a follow caused by something else (a new connection): created unless it
    exists or is refused, and then ``follow.created`` with ``reason`` is emitted. The followee's
    followers follow from that event (the follows worker). ``restricted``: the followee's
    setting as the caller read it already, else it is read here."""
    if restricted is None:
        restricted = _restricted(store, followee)
    keys.FOLLOW(tx, keys=_follow_keys(outbox, follower, followee), pipe=tx,
                **follow_args(outbox, follower, followee, None, reason, at, restricted=restricted))


def _unfollow(client: Client, outbox: Outbox, follower: str, followee: str, reason: str, at: int, pipe=None):
    removed = new_event("follows", "follow.removed", {
        "follower": follower, "followee": followee, "reason": reason, "at": rfc3339(at), "version": PENDING_VERSION})
    return keys.UNFOLLOW(client, keys={"following": keys.following(follower), "alerts": keys.alerts(follower),
                                       "outbox": outbox.key_for(keys.member_tag(follower)),
                                       "version": keys.follow_version(follower, followee),
                                       "followed": keys.followed(follower)},
                         follower=follower, followee=followee, event=outbox.xadd_args(removed), pipe=pipe)


def unfollow(store: redis.Redis, outbox: Outbox, follower: str, followee: str) -> bool:
    """Unfollow (idempotent): ``follow.removed`` (reason explicit) only when there was a follow.
    Returns whether one was removed."""
    _not_self(follower, followee)
    version = int(_unfollow(store, outbox, follower, followee, "explicit", now_ms()))
    if version:
        project_edge(store, follower, followee, version, None)
    return bool(version)


def unfollow_quietly(tx: redis.client.Pipeline, outbox: Outbox, follower: str, followee: str,
                     reason: str, at: int) -> None:
    """Queue on ``tx`` the end of a follow caused by something else (connection removed, block)."""
    _unfollow(tx, outbox, follower, followee, reason, at, pipe=tx)


def follow_status(store: redis.Redis, follower: str, followee: str) -> Follow:
    """Whether ``follower`` follows ``followee``, since when, and with post alerts or not."""
    with store.pipeline(transaction=False) as pipe:
        pipe.zscore(keys.following(follower), followee)
        pipe.sismember(keys.alerts(follower), followee)
        since, alert = pipe.execute()
    if since is None:
        return Follow(follower, followee, None, False)
    return Follow(follower, followee, int(since), bool(alert))


def stats(store: redis.Redis, member: str) -> FollowStats:
    """Follower and following counts: two ZCARDs, constant time at any size (the followers' one
    counts the projection, which may lag a follow made elsewhere by moments)."""
    with store.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.followers(member))
        pipe.zcard(keys.following(member))
        followers, following = pipe.execute()
    return FollowStats(followers, following)


def may_see_lists(store: redis.Redis, viewer: str, member: str) -> bool:
    """A member's followers and following lists are for them and their 1st-degree connections."""
    return viewer == member or bool(store.sismember(keys.connections(member), viewer))


def _list(store: redis.Redis, viewer: str, member: str, key: str, limit: int, cursor: str | None):
    if not may_see_lists(store, viewer, member):
        raise Forbidden("Only this member and their connections can see whom they follow and who follows them.",
                        code="follow_lists_private")
    return zset_page(store, key, limit, cursor)


def followers_page(store: redis.Redis, viewer: str, member: str, limit: int, cursor: str | None):
    """A page of ``member``'s followers, newest first: ``([(follower, since_ms)...], next_cursor)``."""
    return _list(store, viewer, member, keys.followers(member), limit, cursor)


def following_page(store: redis.Redis, viewer: str, member: str, limit: int, cursor: str | None):
    """A page of whom ``member`` follows, newest first: ``([(followee, since_ms)...], next_cursor)``."""
    return _list(store, viewer, member, keys.following(member), limit, cursor)
