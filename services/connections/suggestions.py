"""People you may know (PRODUCT.md, Network): 2nd-degree members ranked by the number of
mutual connections, ties by member id; never the member, a connection, a member with an open
invitation either way, or a member blocked either way.

The work is bounded and precomputed (docs/suggestions.md): ``compute`` samples at most
``WALK_BUDGET`` two-step paths, counts mutual connections exactly for the best ``CANDIDATES``
only, and keeps that ranked list. As the event of a connection, removal or block arrives, the
connections worker queues the two members' lists (``queue_refresh``); its refresh loop
(``refresh_due``) recomputes them, as it does the lists that reads found older than
``REFRESH_AFTER_MS``. A change also marks the lists of the two members' connections stale
(their 2nd degree moved). A read serves the kept list as long as it was computed from the
member's current connections and blocks either way (its basis), even an old or stale one
(queued for the worker, served meanwhile); without one it computes on the spot.
Reads drop, at read time, whoever became a connection, an invitee or inviter, or blocked
since the list was computed.
"""
from __future__ import annotations

import threading

import redis

from services.connections import store as keys
from services.connections.network import mutual_counts
from shared import store_client
from shared.clock import now_ms
from shared.logs import get_logger
from shared.pages import decode_cursor, encode_cursor

log = get_logger(__name__)

NEIGHBOURS = 200  # the member's most recent connections walked through
WALK_BUDGET = 40_000  # two-step paths walked at most, shared out among those neighbours
MIN_PER_NEIGHBOUR = 50
CANDIDATES = 100  # the list's length: people you may know is a short list
# Second-hand changes (a connection's new connections) mark the kept lists of the two members'
# most recent NEIGHBOURS connections stale; a read serves a stale list and queues it for the
# worker, which recomputes it within moments. Any list older than this is refreshed the same way.
REFRESH_AFTER_MS = 60 * 60 * 1000
KEEP_MS = 30 * 24 * 60 * 60 * 1000  # an idle member's list goes after this; their next read computes
# An event older than the list by more than this is already in it (a replay, a redelivery):
# no recomputation. The margin covers a computation that started just before the change committed.
ALREADY_IN_LIST_MARGIN_MS = 5_000
DUE_POP_TIMEOUT_S = 1  # how long the worker's refresh loop blocks on an empty queue


def _raw(score: bytes | str) -> str:
    return score.decode() if isinstance(score, bytes) else str(score)


def _basis(count: int, newest: list, blocking: int, newest_block: list, blocked_by: int) -> str:
    """The state of ``member``'s own relationships a list is computed from: their connections (count, newest), and, when there are any, the blocks either way
    (an unblock lets a member back in, which a list from before it lacks). Without blocks either
    way the block part is left out, so such members' kept lists keep the basis they had."""
    basis = f"{count}:{newest[0][1] if newest else ''}"
    if blocking or blocked_by:
        basis += f"|{blocking}:{newest_block[0][1] if newest_block else ''}|{blocked_by}"
    return basis


def _choose(counts: dict[str, int], excluded: set[str], eligible, want: int) -> list[str]:
    """The ``want`` best-counted candidates not ``excluded`` and ``eligible`` (ties: smallest ids)."""
    ranked_ = sorted((c for c in counts if c not in excluded), key=lambda c: (-counts[c], c))
    chosen: list[str] = []
    for start in range(0, len(ranked_), want):
        window = ranked_[start:start + want]
        chosen.extend(c for c, ok in zip(window, eligible(window)) if ok)
        if len(chosen) >= want:
            break
    return chosen[:want]


def compute(store: redis.Redis, member: str) -> list[tuple[str, int]]:
    """Compute and keep ``member``'s ranked list now; returns it as ``(member, mutual_connections)``.

    Reads outside any script (a walk touches many members' slots), then one MULTI/EXEC in the
    member's slot keeps the list with the basis it was read from: a change of their own
    relationships meanwhile changes the basis, so the next read recomputes.
    1. walk: the member's NEIGHBOURS most recent connections, and of each its most recent ones,
       at most WALK_BUDGET steps shared out (at least MIN_PER_NEIGHBOUR each), counting how
       often each member is met (a sampled mutual count);
    2. choose: the CANDIDATES best-counted that are not the member, a connection, across an open
       invitation either way, or blocked either way;
    3. count exactly, for the chosen ones only; 4. keep, ranked by exact count.
    """
    at_ms = now_ms()
    with store.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.connections(member))
        pipe.zrevrange(keys.connections(member), 0, -1, withscores=True, score_cast_func=_raw)
        pipe.hkeys(keys.open_invitations(member))
        pipe.zrange(keys.blocks(member), 0, -1, withscores=True, score_cast_func=_raw)
        pipe.smembers(keys.blocked_by(member))
        count, mine, invited, blocking, blocked_by = pipe.execute()
    recent = [m for m, _ in mine[:NEIGHBOURS]]
    per = max(MIN_PER_NEIGHBOUR, WALK_BUDGET // max(1, min(count, NEIGHBOURS)))
    counts: dict[str, int] = {}
    with store.pipeline(transaction=False) as pipe:
        for neighbour in recent:
            pipe.zrevrange(keys.connections(neighbour), 0, per - 1)
        for met in pipe.execute():
            for c in met:
                counts[c] = counts.get(c, 0) + 1
    mine_set = {m for m, _ in mine}
    excluded = {member, *mine_set, *invited, *(m for m, _ in blocking), *blocked_by}
    chosen = _choose(counts, excluded, lambda window: [True] * len(window), CANDIDATES)
    exact = mutual_counts(store, [m for m, _ in mine], chosen)
    ranked_ = sorted(((c, exact[c]) for c in chosen), key=lambda r: (-r[1], r[0]))
    newest_block = sorted(blocking, key=lambda item: float(item[1]))[-1:] if blocking else []
    basis = _basis(count, mine[:1], len(blocking), newest_block, len(blocked_by))
    with store.pipeline(transaction=True) as tx:
        tx.delete(keys.suggestions(member))
        if ranked_:
            tx.zadd(keys.suggestions(member), {c: n for c, n in ranked_})
            tx.pexpire(keys.suggestions(member), KEEP_MS)
        tx.hset(keys.suggestions_state(member), mapping={"basis": basis, "computed_at": at_ms})
        tx.hdel(keys.suggestions_state(member), "stale")
        tx.pexpire(keys.suggestions_state(member), KEEP_MS)
        tx.execute()
    return ranked_


def queue_refresh(store: redis.Redis, tx: redis.client.Pipeline, members: tuple[str, ...], changed_at_ms: int) -> list[str]:
    """Queue on ``tx`` the recomputation of ``members``' lists after their own change of
    ``changed_at_ms``: each list is flagged stale and the member queued for the worker's
    refresh loop (``refresh_due``), unless it was computed well after the change and so already
    reflects it (a replayed event). Returns the members queued.

    Off the event's path: the consumer pays one pipelined read and up to two queued writes a
    member, the loop a computation per member however many of their changes were queued meanwhile (``ZADD NX``:
    a burst of accepts around one member computes their list once). Until it has, a read finds
    the list's basis changed and computes it itself, so nothing stale is served for it."""
    with store.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.hget(keys.suggestions_state(member), "computed_at")
        computed = pipe.execute()
    queued = []
    for member, at in zip(members, computed):
        if at is not None:
            if int(at) >= changed_at_ms + ALREADY_IN_LIST_MARGIN_MS:
                continue
            tx.hset(keys.suggestions_state(member), "stale", 1)  # the loop recomputes it however fresh
        tx.zadd(keys.suggestions_due(), {member: changed_at_ms}, nx=True)
        queued.append(member)
    return queued


def mark_network_stale(store: redis.Redis, tx: redis.client.Pipeline, members: tuple[str, ...]) -> None:
    """Queue on ``tx``: the kept lists of ``members``' most recent connections are stale, since
    their 2nd degree changed. Only lists that exist are marked (a member without one computes
    on their next read anyway); marking is a flag, not a recomputation, so a hub's change costs
    a few hundred HSETs, not a few hundred walks."""
    with store.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.zrevrange(keys.connections(member), 0, NEIGHBOURS - 1)
        neighbours = sorted({n for group in pipe.execute() for n in group} - set(members))
    with store.pipeline(transaction=False) as pipe:
        for neighbour in neighbours:
            pipe.exists(keys.suggestions_state(neighbour))
        kept = pipe.execute()
    for neighbour, exists in zip(neighbours, kept):
        if exists:
            tx.hset(keys.suggestions_state(neighbour), "stale", 1)


def _due(at: str | None, stale: str | None) -> bool:
    return at is None or stale is not None or now_ms() - int(at) >= REFRESH_AFTER_MS


def refresh_due(stop: threading.Event, store: redis.Redis) -> None:
    """The worker's loop: recompute the lists reads found old, one member at a time, until ``stop``.

    A member is popped before the work: if the worker dies meanwhile, the member's next read
    queues them again (their list is still old), so nothing is lost for long.
    """
    backoff = 0.2
    while not stop.is_set():
        try:
            popped = store.bzpopmin(keys.suggestions_due(), timeout=DUE_POP_TIMEOUT_S)
            if popped:
                _, member, _ = popped
                if _due(*store.hmget(keys.suggestions_state(member), "computed_at", "stale")):
                    compute(store, member)
            backoff = 0.2
        except store_client.UNAVAILABLE as exc:
            log.warning("suggestions refresh waiting", error=repr(exc), retry_in=backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)
        except redis.ResponseError as exc:  # one member's bad state must not stop the loop
            log.error("suggestions refresh failed", error=repr(exc))


def ranked(store: redis.Redis, member: str) -> list[tuple[str, int]]:
    """``member``'s ranked candidates ``(member, mutual_connections)``: the kept list when it was
    computed from their current connections and blocks, else computed now."""
    with store.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.connections(member))
        # The score exactly as the script sees it, so the two bases compare as strings.
        pipe.zrevrange(keys.connections(member), 0, 0, withscores=True, score_cast_func=_raw)
        pipe.zcard(keys.blocks(member))
        pipe.zrevrange(keys.blocks(member), 0, 0, withscores=True, score_cast_func=_raw)
        pipe.scard(keys.blocked_by(member))
        pipe.hmget(keys.suggestions_state(member), "basis", "computed_at", "stale")
        pipe.zrange(keys.suggestions(member), 0, -1, withscores=True)
        count, newest, blocking, newest_block, blocked_by, (basis, at, stale), kept = pipe.execute()
    if basis is None or basis != _basis(count, newest, blocking, newest_block, blocked_by):
        # No list yet, or one from before the member's own change (a connection, a removal, a
        # block or an unblock either way) that the worker has not caught up with: the one cold
        # computation a read may pay.
        return compute(store, member)
    if _due(at, stale):
        # Served as it is; the worker recomputes it (NX: queued once however often it is read).
        store.zadd(keys.suggestions_due(), {member: now_ms()}, nx=True)
    return sorted(((m, int(s)) for m, s in kept), key=lambda item: (-item[1], item[0]))


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
