"""A closed account's erasure in the follows service (on ``member.closed``, from the member
replica's consumer): its follow edges both ways, its follow setting, and its side and the other
side of the connections replica.

Every write is a single-key command queued on the consumer's per-slot transactions, so each
touches one slot. The others' counts are the cardinalities of their sets (ZREM/SREM), so a
retried ``member.closed`` finds nothing left to remove and no count drops twice. The edges are
erased directly, with no follow.removed events: every other service erases its own copy of the
member on the same ``member.closed``.
"""
from __future__ import annotations

from services.follows import store as keys
from shared.bus.consumer import Effects


def _suffixes(store, pattern_prefix: str) -> set[str]:
    """The last parts of the keys starting with ``pattern_prefix`` (one member's slot)."""
    return {k[len(pattern_prefix):] for k in store.scan_iter(match=pattern_prefix + "*", count=1000)}


def erase(member: str, fx: Effects) -> None:
    """Queue the erasure of everything the follows store holds of ``member``."""
    store, tx = fx.store, fx.tx
    tag = keys.member_tag(member)
    # Followees: those followed now, and those whose edge left a version behind.
    followees = set(store.zrange(keys.following(member), 0, -1))
    followees |= _suffixes(store, f"follows:{tag}:follow-version:{member}:")
    for followee in followees:
        tx.zrem(keys.followers(followee), member)
        tx.hdel(keys.followers_version(followee), member)
        tx.delete(keys.follow_version(member, followee))
    # Followers: those following now, and every follower whose edge version was projected here.
    followers = set(store.zrange(keys.followers(member), 0, -1)) | set(store.hkeys(keys.followers_version(member)))
    for follower in followers:
        tx.zrem(keys.following(follower), member)
        tx.srem(keys.alerts(follower), member)
        tx.delete(keys.follow_version(follower, member))
    # The connections replica, both sides.
    others = (set(store.smembers(keys.connections(member))) | set(store.smembers(keys.blocks(member)))
              | set(store.smembers(keys.blocked_by(member)))
              | _suffixes(store, f"follows:{tag}:pair-version:{member}:"))
    for other in others:
        tx.srem(keys.connections(other), member)
        tx.srem(keys.blocks(other), member)
        tx.srem(keys.blocked_by(other), member)
        tx.delete(keys.pair_version(other, member))  # the other's slot
        tx.delete(keys.pair_version(member, other))
    tx.delete(keys.following(member), keys.alerts(member), keys.followers(member),
              keys.followers_version(member), keys.follow_setting(member), keys.connections(member),
              keys.blocks(member), keys.blocked_by(member))
