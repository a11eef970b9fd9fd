"""What profiles knows of the network, from connections.events: each member's 1st-degree
connections and blocks both ways (the view table and search need them) and their skills'
endorsement counts.

Each side of a pair change is projected by one script in that member's shard, applied only
when the pair's version is newer than the one stored beside it (``PROJECT_PAIR``), so a
duplicate, a stale copy or a replay of the topic changes nothing. A closed member's side is
never written again, and a change naming a closed member is dropped: the erasure on
``member.closed`` is final.
"""
from __future__ import annotations

import redis

from services.profiles import search
from services.profiles import store as scripts
from services.profiles.profiles import skill_key
from services.profiles.store import Keys


def _closed(store: redis.Redis, keys: Keys, member: str) -> bool:
    return store.hget(keys.member(member), "status") == "closed"


def project(client, keys: Keys, member: str, other: str, version: int, change: str, entry: str = "", pipe=None):
    """``member``'s side of a pair change (``entry``: the other's search entry, for a connection)."""
    return scripts.PROJECT_PAIR(client, keys={"member": keys.member(member), "versions": keys.pair_versions(member),
                                              "connections": keys.connections(member),
                                              "names": keys.connection_names(member), "blocks": keys.blocks(member),
                                              "blocked_by": keys.blocked_by(member)},
                                pipe=pipe, other=other, version=version, change=change, entry=entry)


def _entry(store: redis.Redis, keys: Keys, member: str) -> str:
    name = store.hget(keys.member(member), "name")
    return (search.entry(name, member) or "") if name else ""


def pair_changed(store: redis.Redis, tx: redis.client.Pipeline, keys: Keys, a: str, b: str, version: int,
                 change_a: str, change_b: str) -> None:
    """Queue both sides of one pair change (``a`` sees ``change_a``, ``b`` sees ``change_b``)."""
    if _closed(store, keys, a) or _closed(store, keys, b):
        return
    entry_a = _entry(store, keys, a) if change_b == "connected" else ""
    entry_b = _entry(store, keys, b) if change_a == "connected" else ""
    project(tx, keys, a, b, version, change_a, entry_b, pipe=tx)
    project(tx, keys, b, a, version, change_b, entry_a, pipe=tx)


def endorsed(store: redis.Redis, tx: redis.client.Pipeline, keys: Keys, endorser: str, endorsee: str,
             skill: str) -> None:
    """Count ``endorser``'s endorsement of ``endorsee`` for ``skill`` once, and remember it on the
    endorser's side (to take it back when they close their account)."""
    if _closed(store, keys, endorser) or _closed(store, keys, endorsee):
        return
    key = skill_key(skill)
    scripts.ENDORSE(tx, keys={"member": keys.member(endorsee), "endorsers": keys.endorsers(endorsee, key),
                              "counts": keys.endorsement_counts(endorsee)},
                    pipe=tx, endorser=endorser, skill=key)
    tx.sadd(keys.endorsed(endorser), f"{endorsee}\t{key}")
