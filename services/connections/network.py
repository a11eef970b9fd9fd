"""The rules of the network (PRODUCT.md, Network and Who sees what): connections, their
visibility, removal, degrees and mutual connections, as plain functions over the store."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from services.connections import projections
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

# The degree-3 check's bounds (see ``_degree3``): connections of the smaller side examined,
# connections of each member read at most, neighbours read per round trip.
DEGREE3_SCAN_LIMIT = 2000
DEGREE3_FAR = 1000
DEGREE3_PIPELINE = 100
MSCORE_CHUNK = 1000
# Items (members, scores) one pipeline of ``mutual_counts`` brings back at most, about.
COUNT_READ_ITEMS = 50_000


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
    """From the pair's record, which the accept or removal wrote: a member sees their own write."""
    return store.hexists(keys.relationship(a, b), "connected_at")


def count(store: redis.Redis, member: str) -> int:
    """The number of ``member``'s connections (their projection): public, constant time."""
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
    reply = keys.REMOVE(store, keys={"relationship": keys.relationship(remover, other),
                                     "outbox": outbox.key_for(keys.pair_tag(remover, other))},
                        remover=remover, other=other, event=outbox.xadd_args(event))
    if reply[0] == "not_connected":
        raise NotFound(f"You are not connected to {other}.", code="not_connected")
    projections.project(store, remover, other)


def _scores(store: redis.Redis, key: str, members: list[str]) -> list:
    """ZMSCORE of ``members`` in ``key``, in chunks (one key a command: any slot)."""
    found: list = []
    with store.pipeline(transaction=False) as pipe:
        for i in range(0, len(members), MSCORE_CHUNK):
            pipe.zmscore(key, members[i:i + MSCORE_CHUNK])
        for reply in pipe.execute():
            found.extend(reply)
    return found


def shared_connections(store: redis.Redis, a: str, b: str) -> list[tuple[str, int]]:
    """The connections ``a`` and ``b`` share, each with when ``a`` connected to them: the smaller
    list read whole, looked up in the other's set (two members' sets are two slots: no ZINTER)."""
    with store.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.connections(a))
        pipe.zcard(keys.connections(b))
        count_a, count_b = pipe.execute()
    if not count_a or not count_b:
        return []
    if count_a <= count_b:
        mine = store.zrange(keys.connections(a), 0, -1, withscores=True)
        theirs = _scores(store, keys.connections(b), [m for m, _ in mine])
        return [(m, int(s)) for (m, s), t in zip(mine, theirs) if t is not None]
    others = store.zrange(keys.connections(b), 0, -1)
    mine = _scores(store, keys.connections(a), others)
    return [(m, int(s)) for m, s in zip(others, mine) if s is not None]


def mutual_counts(store: redis.Redis, mine: list[str], others: list[str]) -> dict[str, int]:
    """How many of ``mine`` (a member's connections, read whole) each of ``others`` is connected
    to: ``len(shared_connections(member, other))`` for all of them in a few pipelined round
    trips, not three each. Per other, the smaller side is read: their connections whole
    (counted against ``mine``), or their scores of ``mine``. A pipeline is sent once it would
    bring about ``COUNT_READ_ITEMS`` items, so a hub's candidates are not all held at once."""
    counts = {other: 0 for other in others}
    if not mine or not others:
        return counts
    with store.pipeline(transaction=False) as pipe:
        for other in others:
            pipe.zcard(keys.connections(other))
        sizes = pipe.execute()
    mine_set = set(mine)
    queued: list[tuple[str, bool]] = []  # per reply: whose, and whether it is a whole list

    def send(pipe) -> None:
        for (other, whole), reply in zip(queued, pipe.execute()):
            counts[other] += sum(1 for m in reply if m in mine_set) if whole else \
                sum(1 for score in reply if score is not None)
        queued.clear()

    with store.pipeline(transaction=False) as pipe:
        items = 0
        for other, size in zip(others, sizes):
            if not size:
                continue
            if size <= len(mine):
                pipe.zrange(keys.connections(other), 0, -1)
                queued.append((other, True))
            else:
                for i in range(0, len(mine), MSCORE_CHUNK):
                    pipe.zmscore(keys.connections(other), mine[i:i + MSCORE_CHUNK])
                    queued.append((other, False))
            items += min(size, len(mine))
            if items >= COUNT_READ_ITEMS:
                send(pipe)
                items = 0
        if queued:
            send(pipe)
    return counts


def _degree3(store: redis.Redis, a: str, b: str) -> bool:
    """Whether a connection of one is connected to a connection of the other: the other's
    connections (at most DEGREE3_FAR) held as a set, against the connections of up to
    DEGREE3_SCAN_LIMIT connections of the smaller side, each read whole up to DEGREE3_FAR, in
    pipelines of DEGREE3_PIPELINE (the bounds keep a lookup between two huge networks cheap; such
    members share a connection, which the degree-2 check has found, almost always)."""
    with store.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.connections(a))
        pipe.zcard(keys.connections(b))
        count_a, count_b = pipe.execute()
    if not count_a or not count_b:
        return False
    small, other = (a, b) if count_a <= count_b else (b, a)
    far = set(store.zrange(keys.connections(other), 0, DEGREE3_FAR - 1))
    neighbours = store.zrange(keys.connections(small), 0, DEGREE3_SCAN_LIMIT - 1)
    for start in range(0, len(neighbours), DEGREE3_PIPELINE):
        with store.pipeline(transaction=False) as pipe:
            for neighbour in neighbours[start:start + DEGREE3_PIPELINE]:
                pipe.zrange(keys.connections(neighbour), 0, DEGREE3_FAR - 1)
            if any(not far.isdisjoint(theirs) for theirs in pipe.execute()):
                return True
    return False


def relationship(store: redis.Redis, caller: str, member: str) -> Relationship:
    """``caller``'s relationship to ``member``: degree up to 3 (None = out of network), the
    invitation between them as the caller sees it, the number of mutual connections.

    Connected or not, and the invitation, come from the pair's record (read-your-write); the
    mutual connections and the degree beyond 1 from the members' projected connections."""
    _not_self(caller, member)
    record = store.hgetall(keys.relationship(caller, member))
    connected = "connected_at" in record
    mutual = len(shared_connections(store, caller, member))
    if connected:
        degree = 1
    elif mutual:
        degree = 2
    else:
        degree = 3 if _degree3(store, caller, member) else None
    invitation = None
    if record.get("open"):
        if record.get("open_by") == caller:
            invitation = {"id": record["open"], "direction": "sent"}
        elif record.get("open_status") == "pending":  # one the caller ignored is gone for them
            invitation = {"id": record["open"], "direction": "received"}
    return Relationship(member, degree, connected, invitation, mutual)


def mutual_connections(store: redis.Redis, caller: str, member: str, limit: int,
                       cursor: str | None) -> tuple[list[tuple[str, int]], str | None, int]:
    """The connections ``caller`` and ``member`` share, newest (for the caller) first, and their total."""
    _not_self(caller, member)
    # Scored by when the caller connected to each: the caller's own view of their network.
    shared_ = shared_connections(store, caller, member)
    ordered = sorted(shared_, key=lambda item: (item[1], item[0]), reverse=True)
    if cursor:
        after_score, after_member = decode_cursor(cursor)
        ordered = [(m, s) for m, s in ordered if (s, m) < (after_score, after_member)]
    items = ordered[:limit]
    next_cursor = encode_cursor(items[-1][1], items[-1][0]) if len(ordered) > limit else None
    return items, next_cursor, len(shared_)
