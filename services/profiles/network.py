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


def members_now(store: redis.Redis, keys: Keys, members) -> dict[str, list]:
    """member → [status, name] of each member's record as it is now (one HMGET each, in their
    own shards), all in one round trip: what ``pair_changed`` and ``endorsed`` read of them."""
    members = list(dict.fromkeys(members))
    with store.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.hmget(keys.member(member), "status", "name")
        return dict(zip(members, pipe.execute()))


def _known(store: redis.Redis, keys: Keys, member: str, known: dict | None) -> list:
    found = known.get(member) if known else None
    return found if found is not None else store.hmget(keys.member(member), "status", "name")


def _closed(store: redis.Redis, keys: Keys, member: str, known: dict | None = None) -> bool:
    return _known(store, keys, member, known)[0] == "closed"


def project(client, keys: Keys, member: str, other: str, version: int, change: str, entry: str = "", pipe=None):
    """``member``'s side of a pair change (``entry``: the other's search entry, for a connection)."""
    return scripts.PROJECT_PAIR(client, keys={"member": keys.member(member), "versions": keys.pair_versions(member),
                                              "connections": keys.connections(member),
                                              "names": keys.connection_names(member), "blocks": keys.blocks(member),
                                              "blocked_by": keys.blocked_by(member)},
                                pipe=pipe, other=other, version=version, change=change, entry=entry)


def _entry(store: redis.Redis, keys: Keys, member: str, known: dict | None = None) -> str:
    name = _known(store, keys, member, known)[1]
    return (search.entry(name, member) or "") if name else ""


def pair_changed(store: redis.Redis, tx: redis.client.Pipeline, keys: Keys, a: str, b: str, version: int,
                 change_a: str, change_b: str, known: dict | None = None) -> None:
    """Queue both sides of one pair change (``a`` sees ``change_a``, ``b`` sees ``change_b``).
    ``known``: the members' records as ``members_now`` read them for the batch, else read here."""
    if _closed(store, keys, a, known) or _closed(store, keys, b, known):
        return
    entry_a = _entry(store, keys, a, known) if change_b == "connected" else ""
    entry_b = _entry(store, keys, b, known) if change_a == "connected" else ""
    project(tx, keys, a, b, version, change_a, entry_b, pipe=tx)
    project(tx, keys, b, a, version, change_b, entry_a, pipe=tx)


def endorsed(store: redis.Redis, tx: redis.client.Pipeline, keys: Keys, endorser: str, endorsee: str,
             skill: str, known: dict | None = None) -> None:
    """Count ``endorser``'s endorsement of ``endorsee`` for ``skill`` once, and remember it on the
    endorser's side (to take it back when they close their account)."""
    if _closed(store, keys, endorser, known) or _closed(store, keys, endorsee, known):
        return
    key = skill_key(skill)
    scripts.ENDORSE(tx, keys={"member": keys.member(endorsee), "endorsers": keys.endorsers(endorsee, key),
                              "counts": keys.endorsement_counts(endorsee)},
                    pipe=tx, endorser=endorser, skill=key)
    tx.sadd(keys.endorsed(endorser), f"{endorsee}\t{key}")
