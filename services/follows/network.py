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


def _fresh(store: redis.Redis, tx: redis.client.Pipeline, member: str, other: str, version: int) -> bool:
    """Whether the change is newer than the last one of the pair applied to ``member``'s side; if
    so, queue it as the last (in ``member``'s slot).

    Events of one pair share a partition, which one consumer of the group reads at a time, so
    nothing else writes the pair's version between this read and the transaction."""
    key = keys.pair_version(member, other)
    last = store.get(key)
    if last is not None and version <= int(last):
        return False
    tx.sadd(keys.paired(member), other)  # the footprint, before the version it indexes
    tx.set(key, version)
    return True


def _sides(a: str, b: str):
    return ((a, b), (b, a))


def connected(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, inviter: str, invitee: str,
              at: int, version: int) -> None:
    """A new connection: each remembers it, and each follows the other unless they already did
    (``follow.created`` reason ``connection``, which raises no "new follower" notification)."""
    for member, other in _sides(inviter, invitee):
        if _fresh(store, tx, member, other, version):
            tx.sadd(keys.connections(member), other)
            follow_quietly(store, tx, outbox, member, other, "connection", at)


def disconnected(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, remover: str, other: str,
                 at: int, version: int, because_blocked: bool = False) -> None:
    """A connection removed: each forgets it, and the follows in both directions go."""
    reason = "blocked" if because_blocked else "connection_removed"
    for member, them in _sides(remover, other):
        if _fresh(store, tx, member, them, version):
            tx.srem(keys.connections(member), them)
            unfollow_quietly(tx, outbox, member, them, reason, at)


def blocked(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, blocker: str, blocked_member: str,
            at: int, version: int) -> None:
    """A block: no connection, no follows either way, and follows refused until it is lifted
    (each side's replica knows: the blocker whom they blocked, the blocked member who blocked them)."""
    for member, other in _sides(blocker, blocked_member):
        if _fresh(store, tx, member, other, version):
            tx.sadd(keys.blocks(member) if member == blocker else keys.blocked_by(member), other)
            tx.srem(keys.connections(member), other)
            unfollow_quietly(tx, outbox, member, other, "blocked", at)


def unblocked(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, blocker: str, blocked_member: str,
              at: int, version: int) -> None:
    """A block lifted: follows are allowed again; nothing is restored."""
    for member, other in _sides(blocker, blocked_member):
        if _fresh(store, tx, member, other, version):
            tx.srem(keys.blocks(member) if member == blocker else keys.blocked_by(member), other)
