"""What follows knows of connections: its replica of connections.events, and what each
change there does to follows.

Connecting makes both members follow each other; removing the connection removes the
follows both ways; a block removes them too and refuses follows while it lasts. Events of
one pair share a partition, so they arrive in order; the pair's version (numbered by the
connections store with each change, one sequence per member pair, and kept on each member's
side: each effect on a member goes through that member's slot) still skips any duplicate
or stale copy, so replaying the topic from the beginning, under any consumer group, changes
nothing. Versions, not times: the times of two changes stamped by two processes may be out
of order.
"""
from __future__ import annotations

import redis

from services.follows import store as keys
from services.follows.following import follow_quietly, unfollow_quietly
from shared.bus.outbox import Outbox


_UNREAD = object()


def pairs_now(store: redis.Redis, sides, settings_of=()) -> dict:
    """What the handlers read, for many pairs in one round trip: ``("version", member, other)``
    → the pair's last version applied to ``member``'s side, for each (member, other) of
    ``sides``; ``("restricted", member)`` → whether only connections may follow them, for each
    member of ``settings_of``. Each one command, in its member's slot."""
    sides, settings_of = list(dict.fromkeys(sides)), list(dict.fromkeys(settings_of))
    with store.pipeline(transaction=False) as pipe:
        for member, other in sides:
            pipe.get(keys.pair_version(member, other))
        for member in settings_of:
            pipe.hget(keys.follow_setting(member), "followers")
        replies = pipe.execute()
    known = {("version", m, o): v for (m, o), v in zip(sides, replies)}
    known.update({("restricted", m): v == "connections" for m, v in zip(settings_of, replies[len(sides):])})
    return known


def _fresh(store: redis.Redis, tx: redis.client.Pipeline, member: str, other: str, version: int,
           known: dict | None = None) -> bool:
    """Whether the change is newer than the last one of the pair applied to ``member``'s side; if
    so, queue it as the last (in ``member``'s slot). ``known``: ``pairs_now`` for the batch.

    Events of one pair share a partition, which one consumer of the group reads at a time, so
    nothing else writes the pair's version between this read and the transaction (and a batch
    split by key holds one event of a pair: reading it ahead of the batch reads the same)."""
    key = keys.pair_version(member, other)
    last = (known or {}).get(("version", member, other), _UNREAD)
    if last is _UNREAD:
        last = store.get(key)
    if last is not None and version <= int(last):
        return False
    tx.sadd(keys.paired(member), other)  # the footprint, before the version it indexes
    tx.set(key, version)
    return True


def _sides(a: str, b: str):
    return ((a, b), (b, a))


def connected(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, inviter: str, invitee: str,
              at: int, version: int, known: dict | None = None) -> None:
    """A new connection: each remembers it, and each follows the other unless they already did
    (``follow.created`` reason ``connection``, which raises no "new follower" notification)."""
    for member, other in _sides(inviter, invitee):
        if _fresh(store, tx, member, other, version, known):
            tx.sadd(keys.connections(member), other)
            follow_quietly(store, tx, outbox, member, other, "connection", at,
                           restricted=(known or {}).get(("restricted", other)))


def disconnected(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, remover: str, other: str,
                 at: int, version: int, because_blocked: bool = False, known: dict | None = None) -> None:
    """A connection removed: each forgets it, and the follows in both directions go."""
    reason = "blocked" if because_blocked else "connection_removed"
    for member, them in _sides(remover, other):
        if _fresh(store, tx, member, them, version, known):
            tx.srem(keys.connections(member), them)
            unfollow_quietly(tx, outbox, member, them, reason, at)


def blocked(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, blocker: str, blocked_member: str,
            at: int, version: int, known: dict | None = None) -> None:
    """A block: no connection, no follows either way, and follows refused until it is lifted
    (each side's replica knows: the blocker whom they blocked, the blocked member who blocked them)."""
    for member, other in _sides(blocker, blocked_member):
        if _fresh(store, tx, member, other, version, known):
            tx.sadd(keys.blocks(member) if member == blocker else keys.blocked_by(member), other)
            tx.srem(keys.connections(member), other)
            unfollow_quietly(tx, outbox, member, other, "blocked", at)


def unblocked(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, blocker: str, blocked_member: str,
              at: int, version: int, known: dict | None = None) -> None:
    """A block lifted: follows are allowed again; nothing is restored."""
    for member, other in _sides(blocker, blocked_member):
        if _fresh(store, tx, member, other, version, known):
            tx.srem(keys.blocks(member) if member == blocker else keys.blocked_by(member), other)
