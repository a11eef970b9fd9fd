"""Blocking (PRODUCT.md, Network): a block removes the connection and the invitations
between the two, and refuses invitations, introductions and endorsements while it lasts.

The blocked member is told nothing: every refusal a block causes is the plain refusal of
its kind, and their own open invitation to the blocker is *ignored* (silent, it still looks
pending to them) rather than withdrawn. The follows and feed services act on
``block.added`` (follows removed and refused, each hidden from the other's feed). Lifting a
block (``block.removed``) restores nothing.
"""
from __future__ import annotations

import redis

from services.connections import store as keys
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.events.envelope import PENDING_VERSION
from shared.pages import zset_page
from shared.problems import Invalid


def _not_self(blocker: str, member: str) -> None:
    if blocker == member:
        raise Invalid({"member": ["A member cannot block themselves."]}, code="cannot_block_self")


def is_blocked_either_way(store: redis.Redis, a: str, b: str) -> bool:
    with store.pipeline(transaction=False) as pipe:
        pipe.zscore(keys.blocks(a), b)
        pipe.zscore(keys.blocks(b), a)
        return any(score is not None for score in pipe.execute())


def block(store: redis.Redis, outbox: Outbox, blocker: str, blocked: str) -> bool:
    """``blocker`` blocks ``blocked`` (idempotent). Returns whether the block is new."""
    _not_self(blocker, blocked)
    while True:
        now = now_ms()
        at = rfc3339(now)
        mine = store.hget(keys.open_invitations(blocker), blocked) or ""
        theirs = store.hget(keys.open_invitations(blocked), blocker) or ""
        removed = outbox.xadd_args(new_event("connections", "connection.removed", {
            "remover": blocker, "other": blocked, "reason": "blocked", "at": at, "version": PENDING_VERSION}))
        added = outbox.xadd_args(new_event("connections", "block.added", {
            "blocker": blocker, "blocked": blocked, "at": at, "version": PENDING_VERSION}))
        withdrawn = outbox.xadd_args(new_event("connections", "invitation.withdrawn", {
            "invitation_id": mine, "inviter": blocker, "invitee": blocked, "at": at})) if mine else []
        ignored = outbox.xadd_args(new_event("connections", "invitation.ignored", {
            "invitation_id": theirs, "inviter": blocked, "invitee": blocker, "at": at})) if theirs else []
        reply = keys.BLOCK(store, [
            keys.blocks(blocker), keys.blocked_by(blocked), keys.connections(blocker), keys.connections(blocked),
            keys.open_invitations(blocker), keys.open_invitations(blocked), keys.received(blocker),
            keys.received(blocked), keys.sent(blocker), outbox.key,
            keys.invitation(mine or "-"), keys.invitation(theirs or "-"), keys.pair_version(blocker, blocked),
        ], [blocker, blocked, now, mine, theirs, len(removed), len(added), len(withdrawn),
            *removed, *added, *withdrawn, *ignored])
        if reply[0] != "retry":
            return reply[0] == "blocked"


def unblock(store: redis.Redis, outbox: Outbox, blocker: str, blocked: str) -> bool:
    """Lift a block (idempotent); nothing that the block removed comes back. Returns whether one was lifted."""
    _not_self(blocker, blocked)
    event = new_event("connections", "block.removed", {"blocker": blocker, "blocked": blocked,
                                                        "at": rfc3339(now_ms()), "version": PENDING_VERSION})
    reply = keys.UNBLOCK(store, [keys.blocks(blocker), keys.blocked_by(blocked), outbox.key,
                                 keys.pair_version(blocker, blocked)],
                         [blocker, blocked, *outbox.xadd_args(event)])
    return reply[0] == "unblocked"


def page(store: redis.Redis, blocker: str, limit: int, cursor: str | None) -> tuple[list[tuple[str, int]], str | None]:
    """The members ``blocker`` has blocked, newest first: only the blocker sees their list."""
    items, next_cursor = zset_page(store, keys.blocks(blocker), limit, cursor)
    return [(member, int(score)) for member, score in items], next_cursor
