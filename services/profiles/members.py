"""What the worker does with the service's own ``member.*`` and ``recommendation.written``
events: the search index, the authors' lists of recommendations given, and the erasure of a
closed account.

Every step is idempotent and touches one slot per command or script (the member's own shard,
a name prefix's, another member's), so a retry or a replay of profiles.events changes nothing.
"""
from __future__ import annotations

import redis

from services.profiles import search
from services.profiles import store as scripts
from services.profiles.store import Keys
from shared.clock import parse_rfc3339


def named(store: redis.Redis, tx: redis.client.Pipeline, keys: Keys, member: str, name: str, version: int) -> None:
    """``member.registered`` / ``member.updated``: file the name under its prefixes, and take the
    old name's out, unless the index holds this version or a newer one, or the account is closed."""
    if store.hget(keys.member(member), "status") == "closed":
        return
    indexed_version, old_name = store.hmget(keys.indexed(member), "version", "name")
    if indexed_version is not None and version <= int(indexed_version):
        return
    old = search.entry(old_name, member) if old_name else None
    new = search.entry(name, member)
    if old != new:
        # Each connection's copy of the name, for their searches (a fan-out of one HSET each).
        for other in store.smembers(keys.connections(member)):
            if new:
                tx.hset(keys.connection_names(other), member, new)
            else:
                tx.hdel(keys.connection_names(other), member)
        if old:
            for prefix in search.prefixes(old_name):
                tx.zrem(keys.names(prefix), old)
        if new:
            for prefix in search.prefixes(name):
                tx.zadd(keys.names(prefix), {new: 0})
    scripts.MARK_INDEXED(tx, keys={"indexed": keys.indexed(member)}, pipe=tx, version=version, name=name)


def recommendation_written(store: redis.Redis, tx: redis.client.Pipeline, keys: Keys, rid: str, author: str,
                           recipient: str, at: str) -> None:
    """The author's list of recommendations given; when the author closed meanwhile (their erasure
    may have run before this reached the list), the recommendation goes instead."""
    if store.hget(keys.member(author), "status") == "closed":
        _erase_recommendation(tx, keys, rid, recipient)
        return
    tx.zadd(keys.given(author), {rid: parse_rfc3339(at)})


def _erase_recommendation(tx: redis.client.Pipeline, keys: Keys, rid: str, recipient: str) -> None:
    scripts.ERASE_RECOMMENDATION(tx, keys={"record": keys.recommendation(rid), "received": keys.received(recipient),
                                           "accepted": keys.accepted(recipient)}, pipe=tx, id=rid)


def closed(store: redis.Redis, tx: redis.client.Pipeline, keys: Keys, member: str) -> None:
    """``member.closed``: erase everything held of ``member`` but the tombstone — their replicas of
    connections and blocks and their place in the other side's, endorsements both ways,
    recommendations given and received, their search entries."""
    with store.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.connections(member))
        pipe.smembers(keys.blocks(member))
        pipe.smembers(keys.blocked_by(member))
        pipe.hkeys(keys.endorsement_counts(member))
        pipe.smembers(keys.endorsed(member))
        pipe.zrange(keys.received(member), 0, -1)
        pipe.zrange(keys.given(member), 0, -1)
        pipe.hget(keys.indexed(member), "name")
        pipe.hkeys(keys.pair_versions(member))  # every pair it was in, past ones too
        connections, blocks, blocked_by, skills, endorsed, received, given, indexed_name, paired = pipe.execute()
    with store.pipeline(transaction=False) as pipe:
        for skill in skills:
            pipe.smembers(keys.endorsers(member, skill))
        for rid in received:
            pipe.hget(keys.recommendation(rid), "author")
        for rid in given:
            pipe.hget(keys.recommendation(rid), "recipient")
        replies = pipe.execute() if skills or received or given else []
    endorsers_of = replies[:len(skills)]
    authors = replies[len(skills):len(skills) + len(received)]
    recipients = replies[len(skills) + len(received):]

    for other in connections:
        tx.srem(keys.connections(other), member)
        tx.hdel(keys.connection_names(other), member)
    for other in blocks:
        tx.srem(keys.blocked_by(other), member)
    for other in blocked_by:
        tx.srem(keys.blocks(other), member)
    # The other side's version of each pair, ended ones included (a removed connection's stays).
    for other in connections | blocks | blocked_by | set(paired):
        tx.hdel(keys.pair_versions(other), member)
    for skill, endorsers in zip(skills, endorsers_of):
        for endorser in endorsers:
            tx.srem(keys.endorsed(endorser), f"{member}\t{skill}")
    for item in endorsed:
        endorsee, _, skill = item.partition("\t")
        scripts.UNENDORSE(tx, keys={"endorsers": keys.endorsers(endorsee, skill),
                                    "counts": keys.endorsement_counts(endorsee)}, pipe=tx, endorser=member, skill=skill)
    for rid, author in zip(received, authors):
        if author:
            tx.zrem(keys.given(author), rid)
        _erase_recommendation(tx, keys, rid, member)
    for rid, recipient in zip(given, recipients):
        if recipient:
            _erase_recommendation(tx, keys, rid, recipient)
    if indexed_name:
        old = search.entry(indexed_name, member)
        for prefix in search.prefixes(indexed_name):
            tx.zrem(keys.names(prefix), old)
    # The member's own keys, one shard: one command.
    tx.delete(keys.connections(member), keys.connection_names(member), keys.blocks(member), keys.blocked_by(member), keys.pair_versions(member),
              keys.endorsement_counts(member), *(keys.endorsers(member, s) for s in skills), keys.endorsed(member),
              keys.received(member), keys.accepted(member), keys.given(member), keys.indexed(member))
