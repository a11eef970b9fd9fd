"""A closed account's erasure in the follows service (on ``member.closed``, from the member
replica's consumer): its follow edges both ways, its follow setting, and its side and the other
side of the connections replica.

Every write is a single-key command queued on the consumer's per-slot transactions, so each
touches one slot. The others' counts are the cardinalities of their sets (ZREM/SREM), so a
retried ``member.closed`` finds nothing left to remove and no count drops twice. The edges are
erased directly, with no follow.removed events: every other service erases its own copy of the
member on the same ``member.closed``.

No SCAN: what the member left in other members' slots is found from the member's own keys
(``following``, ``followers_version``, the connections replica) and two footprint sets in its
slot, ``followed`` (every followee whose edge left a ``follow_version``, added by FOLLOW and
UNFOLLOW in the same script as the version) and ``paired`` (every other member a
``pair_version`` names, added in the same transaction as the version). Each footprint entry is
written with or before what it indexes, so erasure never misses a record; an entry whose record
is gone only costs a command that changes nothing. The cost is in proportion to what the member
touched, not to the store.
"""
from __future__ import annotations

from services.follows import store as keys
from shared.bus.consumer import Effects


def erase(member: str, fx: Effects) -> None:
    """Queue the erasure of everything the follows store holds of ``member``."""
    store, tx = fx.store, fx.tx
    # Followees: those followed now, and those whose edge left a version behind.
    followees = set(store.zrange(keys.following(member), 0, -1))
    followees |= store.smembers(keys.followed(member))
    for followee in followees:
        tx.zrem(keys.followers(followee), member)
        tx.hdel(keys.followers_version(followee), member)
        tx.delete(keys.follow_version(member, followee))
    # Followers: those following now, and every follower whose edge version was projected here.
    followers = set(store.zrange(keys.followers(member), 0, -1)) | set(store.hkeys(keys.followers_version(member)))
    for follower in followers:
        tx.zrem(keys.following(follower), member)
        tx.srem(keys.alerts(follower), member)
        tx.srem(keys.followed(follower), member)
        tx.delete(keys.follow_version(follower, member))
    # The connections replica, both sides.
    others = (set(store.smembers(keys.connections(member))) | set(store.smembers(keys.blocks(member)))
              | set(store.smembers(keys.blocked_by(member)))
              | store.smembers(keys.paired(member)))
    for other in others:
        tx.srem(keys.connections(other), member)
        tx.srem(keys.blocks(other), member)
        tx.srem(keys.blocked_by(other), member)
        tx.srem(keys.paired(other), member)  # the other's slot
        tx.delete(keys.pair_version(other, member))
        tx.delete(keys.pair_version(member, other))
    tx.delete(keys.following(member), keys.alerts(member), keys.followers(member),
              keys.followers_version(member), keys.follow_setting(member), keys.connections(member),
              keys.blocks(member), keys.blocked_by(member), keys.followed(member), keys.paired(member))
