"""The messaging service's replica of who is connected to and who blocks whom, from
connections.events, and the reads the rules make of it.

One record per member pair, in the pair's shard, applied only when the event's version (the
connections store's per-pair sequence) is newer than the one held, so a stale or repeated
event never undoes a newer change.

A connection just accepted may not have reached the replica when the client, which saw the
accept answered, sends its first message: a send the replica does not allow waits a little
for it (``settings.messaging_connection_wait_ms``, polling the record) before it is refused.
The other way round is not covered: for as long as the replica lags (tens of milliseconds), a
pair just disconnected can still send.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import redis

from services.messaging.store import PAIR, Keys

POLL_SECONDS = 0.02


def apply(tx: redis.client.Pipeline, keys: Keys, a: str, b: str, version: int, *, connected: bool | None = None,
          blocker: str = "", block: bool | None = None) -> None:
    """Queue one change of the pair ``a``–``b`` on the consumer's transaction."""
    # The footprint on each side (its member's shard), queued before the record: the consumer
    # redoes the whole event on a redelivery, so no record is left without its entries.
    tx.sadd(keys.pairs(a), b)
    tx.sadd(keys.pairs(b), a)
    PAIR(tx, keys={"pair": keys.pair(a, b)}, pipe=tx, version=version,
         connected="" if connected is None else ("1" if connected else "0"),
         blocker=blocker, block="" if block is None else ("1" if block else "0"))


def records(store: redis.Redis, keys: Keys, member: str, others: Iterable[str]) -> dict[str, dict]:
    """The pair records of ``member`` with each of ``others`` (one HGETALL per pair, pipelined)."""
    others = list(others)
    with store.pipeline(transaction=False) as pipe:
        for other in others:
            pipe.hgetall(keys.pair(member, other))
        return dict(zip(others, pipe.execute()))


def is_blocked(record: dict) -> bool:
    """A block either way stands between the pair."""
    return any(k.startswith("blocked:") for k in record)


def blocked_by(record: dict, member: str) -> bool:
    return bool(record.get(f"blocked:{member}"))


def is_connected(record: dict) -> bool:
    return record.get("connected") == "1" and not is_blocked(record)


def closed(store: redis.Redis, keys: Keys, members: Iterable[str]) -> set[str]:
    """Which of ``members`` closed their account (one EXISTS each, in its own shard)."""
    members = list(dict.fromkeys(members))
    with store.pipeline(transaction=False) as pipe:
        for m in members:
            pipe.exists(keys.closed(m))
        return {m for m, gone in zip(members, pipe.execute()) if gone}


def state(store: redis.Redis, keys: Keys, member: str, others: list[str],
          reads: Callable | None = None) -> tuple[dict[str, dict], set[str]]:
    """The pair records of ``member`` with each of ``others`` and which of them closed their
    account, in one round trip (one command per pair or member, each in its own shard).
    ``reads``: runs the queued reads in a pipeline of the caller's (the HTTP layer's
    ``first_reads``, which adds the write's limit hit), else they get one of their own."""
    def queue(pipe) -> None:
        for other in others:
            pipe.hgetall(keys.pair(member, other))
        for other in others:
            pipe.exists(keys.closed(other))

    if reads is None:
        with store.pipeline(transaction=False) as pipe:
            queue(pipe)
            replies = pipe.execute()
    else:
        replies = reads(queue)
    return dict(zip(others, replies)), {o for o, gone in zip(others, replies[len(others):]) if gone}


def not_connected(store: redis.Redis, keys: Keys, member: str, others: list[str], wait_ms: int,
                  found: dict[str, dict] | None = None) -> list[str]:
    """Which of ``others`` the replica does not show connected to ``member``, after waiting up to
    ``wait_ms`` for a connection accepted a moment ago to arrive. A block counts as not connected.
    ``found``: the pair records already read."""
    deadline = time.monotonic() + wait_ms / 1000
    missing = others
    while True:
        found = found if found is not None else records(store, keys, member, missing)
        missing = [o for o in missing if not is_connected(found[o])]
        # A block is settled: waiting would not change it.
        waiting = [o for o in missing if not is_blocked(found[o])]
        if not waiting or time.monotonic() >= deadline:
            return missing
        time.sleep(POLL_SECONDS)
        found = None


def forget(store: redis.Redis, tx, keys: Keys, member: str) -> None:
    """Queue the erasure of a closed account's pair records (each a key of its pair's slot) and
    of its footprint entries on the other side, found from its own footprint (no SCAN: in
    proportion to the members it had a record with). Nothing needs them afterwards: a closed
    account neither sends nor receives."""
    for other in store.smembers(keys.pairs(member)):
        tx.delete(keys.pair(member, other))
        tx.srem(keys.pairs(other), member)
    tx.delete(keys.pairs(member))
