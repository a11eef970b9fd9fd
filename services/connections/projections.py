"""Each member's side of a pair: projections of the pair's authoritative record.

The record (``store.relationship``) lives in the pair's slot and changes with every transition;
the members' connections, invitation lists and blocks live in each member's own slot. ``project``
brings both sides to the record as it is now: the HTTP request that made the change calls it at
once (so a member reads their own lists as they wrote them), and the connections worker calls it
again for every event of the pair (so a request that died in between is made good). Each side
is written only when the record's version is newer than the one it was projected from: late,
repeated or concurrent calls change nothing.
"""
from __future__ import annotations

import redis
from redis.cluster import RedisCluster

from services.connections import store as keys


def project_member(store: redis.Redis, member: str, other: str, record: dict) -> bool:
    """Bring ``member``'s side to ``record`` (the pair's relationship hash); whether it changed."""
    return _project_script(store, member, other, record)[0] == "projected"


def _project_script(store: redis.Redis, member: str, other: str, record: dict, pipe=None):
    return keys.PROJECT(store, pipe=pipe, keys={
        "connections": keys.connections(member), "sent": keys.sent(member), "received": keys.received(member),
        "open": keys.open_invitations(member), "blocks": keys.blocks(member), "blocked_by": keys.blocked_by(member),
        "projected": keys.projected(member),
    }, member=member, other=other, version=record["version"], connected_at=record.get("connected_at", ""),
        open_id=record.get("open", ""), open_by=record.get("open_by", ""), open_at=record.get("open_at", ""),
        open_status=record.get("open_status", ""), blocks_at=record.get(f"block:{member}", ""),
        blocked="1" if f"block:{other}" in record else "0")


def project(store: redis.Redis, a: str, b: str, tx: redis.client.Pipeline | None = None,
            record: dict | None = None) -> None:
    """Bring both members' sides to the pair's record as it is now: both scripts (each in its
    member's slot) in one pipeline on one node, or queued on ``tx`` (a consumer's transaction).
    ``record``: the pair's record as the caller read it already (``records_now``)."""
    if record is None:
        record = store.hgetall(keys.relationship(a, b))
    if "version" not in record:
        return
    if tx is not None:
        _project_script(store, a, b, record, pipe=tx)
        _project_script(store, b, a, record, pipe=tx)
        return
    if isinstance(store, RedisCluster):
        # A cluster's pipeline runs no script, and the two slots may be on two nodes: one call
        # each, routed (and re-routed through a failover) by the cluster client.
        _project_script(store, a, b, record)
        _project_script(store, b, a, record)
        return
    with store.pipeline(transaction=False) as both:
        _project_script(store, a, b, record, pipe=both)
        _project_script(store, b, a, record, pipe=both)
        both.execute()


def records_now(store: redis.Redis, pairs) -> dict[tuple[str, str], dict]:
    """(a, b) → the pair's record as it is now, for every pair of ``pairs``: one HGETALL each
    (each in its pair's slot), all in one round trip."""
    pairs = list(dict.fromkeys(pairs))
    with store.pipeline(transaction=False) as pipe:
        for a, b in pairs:
            pipe.hgetall(keys.relationship(a, b))
        return dict(zip(pairs, pipe.execute()))
