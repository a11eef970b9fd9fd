"""Shards: which hash slot a key lives in, computed in one place.

On a Redis Cluster a command, a MULTI/EXEC or a Lua script may only touch keys of one hash
slot. Every key of an aggregate (a member, a member pair, a post, a conversation) carries one
hash tag naming the aggregate's shard, ``{s17}``, so all of them, and the outbox stream its
writes append to, share a slot. The number of shards is a setting (``RAPPORT_SHARDS``), fixed
for the life of a deployment: changing it moves every key.
"""
from __future__ import annotations

import zlib
from typing import Iterable

from redis.crc import key_slot

DEFAULT_SHARDS = 64


def shard_of(value: str, shards: int = DEFAULT_SHARDS) -> int:
    """The shard of an aggregate id: crc32 of its UTF-8 bytes modulo ``shards``."""
    return zlib.crc32(value.encode()) % shards


def tag(value: str, shards: int = DEFAULT_SHARDS) -> str:
    """The hash tag of ``value``'s shard, e.g. ``{s17}``: put it in every key of the aggregate."""
    return "{s%d}" % shard_of(value, shards)


def shard_tag(shard: int) -> str:
    """The hash tag of shard number ``shard``."""
    return "{s%d}" % shard


def all_tags(shards: int = DEFAULT_SHARDS) -> list[str]:
    """Every shard's tag, in shard order (e.g. for the relays, which cover them all)."""
    return [shard_tag(i) for i in range(shards)]


def pair(a: str, b: str) -> str:
    """The id of an unordered member pair, the same whichever member comes first."""
    return f"{a}|{b}" if a <= b else f"{b}|{a}"


def slot(key: str) -> int:
    """The Redis Cluster hash slot of ``key`` (honouring its hash tag)."""
    return key_slot(key.encode())


class CrossSlot(ValueError):
    """Keys of more than one hash slot in one command, transaction or script."""


def hashed_part(key: str) -> str:
    """The part of ``key`` Redis hashes for its slot: the hash tag's content (between the first
    ``{`` and the first ``}`` after it) when that is not empty, else the whole key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


def check_one_slot(keys: Iterable[str], what: str = "a script") -> None:
    """Raise ``CrossSlot`` unless every key of ``keys`` is in one hash slot.

    Keys with the same hashed part (one hash tag, the usual case) share a slot without any
    CRC computed; only a key with another part has its slot compared."""
    first_key = first_part = None
    first_slot = None
    for key in keys:
        part = hashed_part(key)
        if first_part is None:
            first_key, first_part = key, part
        elif part != first_part:
            if first_slot is None:
                first_slot = slot(first_key)
            if slot(key) != first_slot:
                raise CrossSlot(f"{what} touches keys of two hash slots: {first_key!r} and {key!r}")
