"""What follows knows of connections: its replica of connections.events, and what each
change there does to follows.

Connecting makes both members follow each other; removing the connection removes the
follows both ways; a block removes them too and refuses follows while it lasts. Events of
one pair share a partition, so they arrive in order; the pair's version (numbered by the
connections store with each change, one sequence per member pair) still skips any duplicate
or stale copy, so replaying the topic from the beginning, under any consumer group, changes
nothing. Versions, not times: the times of two changes stamped by two processes may be out
of order.
"""
from __future__ import annotations

import redis

from services.follows import store as keys
from services.follows.following import follow_quietly, unfollow_quietly
from shared.bus.outbox import Outbox


def _fresh(store: redis.Redis, tx: redis.client.Pipeline, a: str, b: str, version: int) -> bool:
    """Whether the change is newer than the last one applied to the pair; if so, queue it as the last.

    Events of one pair share a partition, which one consumer of the group reads at a time, so
    nothing else writes the pair's version between this read and the transaction."""
    key = keys.pair_version(a, b)
    last = store.get(key)
    if last is not None and version <= int(last):
        return False
    tx.set(key, version)
    return True


def _unfollow_both(tx: redis.client.Pipeline, outbox: Outbox, a: str, b: str, reason: str, at: int) -> None:
    unfollow_quietly(tx, outbox, a, b, reason, at)
    unfollow_quietly(tx, outbox, b, a, reason, at)


def connected(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, inviter: str, invitee: str,
              at: int, version: int) -> None:
    """A new connection: remember it, and each follows the other unless they already did
    (``follow.created`` reason ``connection``, which raises no "new follower" notification)."""
    if not _fresh(store, tx, inviter, invitee, version):
        return
    tx.sadd(keys.connections(inviter), invitee)
    tx.sadd(keys.connections(invitee), inviter)
    follow_quietly(tx, outbox, inviter, invitee, "connection", at)
    follow_quietly(tx, outbox, invitee, inviter, "connection", at)


def disconnected(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, remover: str, other: str,
                 at: int, version: int, because_blocked: bool = False) -> None:
    """A connection removed: forget it, and the follows in both directions go."""
    if not _fresh(store, tx, remover, other, version):
        return
    tx.srem(keys.connections(remover), other)
    tx.srem(keys.connections(other), remover)
    _unfollow_both(tx, outbox, remover, other, "blocked" if because_blocked else "connection_removed", at)


def blocked(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, blocker: str, blocked_member: str,
            at: int, version: int) -> None:
    """A block: no connection, no follows either way, and follows refused until it is lifted."""
    if not _fresh(store, tx, blocker, blocked_member, version):
        return
    tx.sadd(keys.blocks(blocker), blocked_member)
    tx.srem(keys.connections(blocker), blocked_member)
    tx.srem(keys.connections(blocked_member), blocker)
    _unfollow_both(tx, outbox, blocker, blocked_member, "blocked", at)


def unblocked(store: redis.Redis, tx: redis.client.Pipeline, outbox: Outbox, blocker: str, blocked_member: str,
              at: int, version: int) -> None:
    """A block lifted: follows are allowed again; nothing is restored."""
    if not _fresh(store, tx, blocker, blocked_member, version):
        return
    tx.srem(keys.blocks(blocker), blocked_member)

