"""People you may know (PRODUCT.md, Network): 2nd-degree members ranked by the number of
mutual connections, ties by member id; never the member, a connection, a member with an open
invitation either way, or a member blocked either way.

The work is bounded and cached (docs/suggestions.md): ``store.SUGGEST`` samples at most
``NEIGHBOURS`` x ``PER_NEIGHBOUR`` two-step paths, counts mutual connections exactly for the
best ``CANDIDATES`` only, and caches that ranked list for ``CACHE_TTL_MS``, or until the
member's own connections change. Reads page the cached list and drop, at read time, whoever
became a connection, an invitee or inviter, or blocked since it was computed.
"""
from __future__ import annotations

import redis

from services.connections import store as keys
from shared.pages import decode_cursor, encode_cursor

NEIGHBOURS = 200  # the member's most recent connections walked through
WALK_BUDGET = 40_000  # two-step paths walked at most, shared out among those neighbours
MIN_PER_NEIGHBOUR = 50
CANDIDATES = 100  # the ranked list's length: people you may know is a short list
CACHE_TTL_MS = 10 * 60 * 1000


def _raw(score: bytes | str) -> str:
    return score.decode() if isinstance(score, bytes) else str(score)


def _basis(count: int, newest: list) -> str:
    return f"{count}:{newest[0][1] if newest else ''}"


def ranked(store: redis.Redis, member: str) -> list[tuple[str, int]]:
    """``member``'s ranked candidates ``(member, mutual_connections)``, from the cache when it is current."""
    with store.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.connections(member))
        # The score exactly as the script sees it, so the two bases compare as strings.
        pipe.zrevrange(keys.connections(member), 0, 0, withscores=True, score_cast_func=_raw)
        pipe.get(keys.suggestions_basis(member))
        pipe.zrange(keys.suggestions(member), 0, -1, withscores=True)
        count, newest, basis, cached = pipe.execute()
    if basis is not None and basis == _basis(count, newest):
        return sorted(((m, int(s)) for m, s in cached), key=lambda item: (-item[1], item[0]))
    per_neighbour = max(MIN_PER_NEIGHBOUR, WALK_BUDGET // max(1, min(count, NEIGHBOURS)))
    flat = keys.SUGGEST(store, [
        keys.connections(member), keys.open_invitations(member), keys.blocks(member), keys.blocked_by(member),
        keys.suggestions(member), keys.suggestions_basis(member),
    ], [member, NEIGHBOURS, per_neighbour, CANDIDATES, CACHE_TTL_MS, keys.CONNECTIONS_PREFIX,
        keys.CONNECTIONS_SUFFIX, keys.OPEN_PREFIX, keys.OPEN_SUFFIX])
    return [(flat[i], int(flat[i + 1])) for i in range(0, len(flat), 2)]


def _still_eligible(store: redis.Redis, member: str, candidates: list[str]) -> list[bool]:
    """Whether each candidate is still neither a connection, nor across an open invitation or a block."""
    with store.pipeline(transaction=False) as pipe:
        for c in candidates:
            pipe.zscore(keys.connections(member), c)
            pipe.hexists(keys.open_invitations(member), c)
            pipe.hexists(keys.open_invitations(c), member)
            pipe.zscore(keys.blocks(member), c)
            pipe.sismember(keys.blocked_by(member), c)
        replies = pipe.execute()
    eligible = []
    for i in range(len(candidates)):
        connected, invited, inviting, blocking, blocked = replies[5 * i:5 * i + 5]
        eligible.append(connected is None and not invited and not inviting and blocking is None and not blocked)
    return eligible


def page(store: redis.Redis, member: str, limit: int, cursor: str | None) -> tuple[list[tuple[str, int]], str | None]:
    """A page of people ``member`` may know, most mutual connections first."""
    candidates = ranked(store, member)
    if cursor:
        after_count, after_member = decode_cursor(cursor)
        candidates = [(m, c) for m, c in candidates if (-c, m) > (-after_count, after_member)]
    items: list[tuple[str, int]] = []
    has_more = False
    # Checked a window at a time: most candidates are still eligible, so one window usually does.
    window = limit + 5
    for start in range(0, len(candidates), window):
        chunk = candidates[start:start + window]
        for item, keep in zip(chunk, _still_eligible(store, member, [m for m, _ in chunk])):
            if not keep:
                continue
            if len(items) == limit:
                has_more = True
                break
            items.append(item)
        if has_more:
            break
    next_cursor = encode_cursor(items[-1][1], items[-1][0]) if has_more else None
    return items, next_cursor
