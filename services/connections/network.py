"""The rules of the network (PRODUCT.md, Network and Who sees what): connections, their
visibility, removal, degrees and mutual connections, as plain functions over the store."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from services.connections import store as keys
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.events.envelope import PENDING_VERSION
from shared.members import Member, Remote
from shared.pages import decode_cursor, encode_cursor, zset_page
from shared.problems import Forbidden, Invalid, NotFound

VISIBILITIES = ("everyone", "connections", "only_me")
DEFAULT_VISIBILITY = "everyone"

# How many connections of the smaller side the degree-3 check examines at most (see store.RELATIONSHIP).
DEGREE3_SCAN_LIMIT = 2000


@dataclass(frozen=True)
class Relationship:
    member: str
    degree: int | None
    connected: bool
    invitation: dict | None  # {"id", "direction": "sent" | "received"}
    mutual_connections: int

    @property
    def can_message(self) -> bool:
        return self.connected



def profile_access(connected: bool, blocked: bool, member: Member | None, remote: Remote | None = None) -> str:
    """What a read of the member's profile serves the caller: ``full`` to a 1st-degree
    connection; to anyone else ``limited`` while the member's profile_visibility is
    ``everyone``, ``minimal`` while it is ``connections``; ``none`` when a block stands between
    the two, or the member never registered or closed their account.

    ``member`` is this service's replica entry; on a miss, ``remote`` is what the profiles API
    answered the caller (a registration the replica has not heard of yet)."""
    if blocked:
        return "none"
    if member is None:
        if remote is not None and remote.found and remote.access in ("full", "limited", "minimal"):
            return remote.access
        return "none"
    if not member.active:
        return "none"
    if connected:
        return "full"
    return "limited" if member.profile_visibility == "everyone" else "minimal"


def _not_self(caller: str, member: str) -> None:
    if caller == member:
        raise Invalid({"member": ["Ask about another member, not yourself."]}, code="same_member")


def is_connected(store: redis.Redis, a: str, b: str) -> bool:
    return store.zscore(keys.connections(a), b) is not None


def count(store: redis.Redis, member: str) -> int:
    """The number of ``member``'s connections: public, constant time."""
    return store.zcard(keys.connections(member))


def visibility(store: redis.Redis, member: str) -> str:
    return store.hget(keys.member_settings(member), "connections_visibility") or DEFAULT_VISIBILITY


def set_visibility(store: redis.Redis, member: str, value: str) -> str:
    store.hset(keys.member_settings(member), "connections_visibility", value)
    return value


def may_see_connections(store: redis.Redis, viewer: str, owner: str) -> bool:
    """Whether ``owner``'s connections_visibility lets ``viewer`` see who ``owner`` is connected to.

    Everything that names a member's connections (their list, the endorsers of their skills)
    asks this first.
    """
    if viewer == owner:
        return True
    setting = visibility(store, owner)
    return setting == "everyone" or (setting == "connections" and is_connected(store, owner, viewer))


def connections_page(store: redis.Redis, viewer: str, owner: str, limit: int,
                     cursor: str | None) -> tuple[list[tuple[str, int]], str | None]:
    """``owner``'s connections newest first, as ``viewer`` may see them (403 by the owner's setting)."""
    if not may_see_connections(store, viewer, owner):
        setting = visibility(store, owner)
        raise Forbidden(f"{owner} shows their connections to "
                            f"{'no one' if setting == 'only_me' else 'their connections only'}.",
                            code="connections_hidden", visibility=setting)
    items, next_cursor = zset_page(store, keys.connections(owner), limit, cursor)
    return [(member, int(score)) for member, score in items], next_cursor


def remove(store: redis.Redis, outbox: Outbox, remover: str, other: str) -> None:
    """Either side ends a connection; the other is not notified (the event says who removed it)."""
    _not_self(remover, other)
    event = new_event("connections", "connection.removed", {
        "remover": remover, "other": other, "reason": "removed", "at": rfc3339(now_ms()), "version": PENDING_VERSION})
    reply = keys.REMOVE(store, [keys.connections(remover), keys.connections(other), outbox.key,
                                keys.pair_version(remover, other)],
                        [remover, other, *outbox.xadd_args(event)])
    if reply[0] == "not_connected":
        raise NotFound(f"You are not connected to {other}.", code="not_connected")


def relationship(store: redis.Redis, caller: str, member: str) -> Relationship:
    """``caller``'s relationship to ``member``: degree up to 3 (None = out of network), the
    invitation between them as the caller sees it, the number of mutual connections."""
    _not_self(caller, member)
    connected, mutual, degree, sent, received, received_status = keys.RELATIONSHIP(store, [
        keys.connections(caller), keys.connections(member),
        keys.open_invitations(caller), keys.open_invitations(member),
    ], [caller, member, DEGREE3_SCAN_LIMIT, keys.CONNECTIONS_PREFIX, keys.CONNECTIONS_SUFFIX,
        keys.INVITATION_PREFIX, keys.INVITATION_SUFFIX])
    invitation = None
    if sent:
        invitation = {"id": sent, "direction": "sent"}
    elif received and received_status == "pending":  # one the caller ignored is gone for them
        invitation = {"id": received, "direction": "received"}
    return Relationship(member, int(degree) or None, bool(int(connected)), invitation, int(mutual))


def mutual_connections(store: redis.Redis, caller: str, member: str, limit: int,
                       cursor: str | None) -> tuple[list[tuple[str, int]], str | None, int]:
    """The connections ``caller`` and ``member`` share, newest (for the caller) first, and their total."""
    _not_self(caller, member)
    # Scored by when the caller connected to each: the caller's own view of their network.
    shared_ = store.zinter({keys.connections(caller): 1, keys.connections(member): 0}, withscores=True)
    ordered = sorted(((m, int(s)) for m, s in shared_), key=lambda item: (item[1], item[0]), reverse=True)
    if cursor:
        after_score, after_member = decode_cursor(cursor)
        ordered = [(m, s) for m, s in ordered if (s, m) < (after_score, after_member)]
    items = ordered[:limit]
    next_cursor = encode_cursor(items[-1][1], items[-1][0]) if len(ordered) > limit else None
    return items, next_cursor, len(shared_)
