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

from services.connections import projections
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
    """From the pair's record: a block by either member."""
    return any(at is not None for at in store.hmget(keys.relationship(a, b), f"block:{a}", f"block:{b}"))


def block(store: redis.Redis, outbox: Outbox, blocker: str, blocked: str) -> bool:
    """``blocker`` blocks ``blocked`` (idempotent). Returns whether the block is new."""
    _not_self(blocker, blocked)
    rel = keys.relationship(blocker, blocked)
    while True:
        now = now_ms()
        at = rfc3339(now)
        open_id, open_by = store.hmget(rel, "open", "open_by")
        removed = outbox.xadd_args(new_event("connections", "connection.removed", {
            "remover": blocker, "other": blocked, "reason": "blocked", "at": at, "version": PENDING_VERSION}))
        added = outbox.xadd_args(new_event("connections", "block.added", {
            "blocker": blocker, "blocked": blocked, "at": at, "version": PENDING_VERSION}))
        decided: list[str] = []
        if open_id:
            # The blocker's own invitation is withdrawn; the blocked member's is ignored (silent).
            name = "invitation.withdrawn" if open_by == blocker else "invitation.ignored"
            decided = outbox.xadd_args(new_event("connections", name, {
                "invitation_id": open_id, "inviter": open_by, "invitee": blocked if open_by == blocker else blocker,
                "at": at}))
        reply = keys.BLOCK(store, keys={"relationship": rel, "invitation": keys.invitation(open_id) if open_id else rel,
                                        "outbox": outbox.key_for(keys.pair_tag(blocker, blocked))},
                           blocker=blocker, blocked=blocked, now=now, expected_open=open_id or "",
                           n1=len(removed), n2=len(added), events=[*removed, *added, *decided])
        if reply[0] != "retry":
            if reply[0] == "blocked":
                projections.project(store, blocker, blocked)
            return reply[0] == "blocked"


def unblock(store: redis.Redis, outbox: Outbox, blocker: str, blocked: str) -> bool:
    """Lift a block (idempotent); nothing that the block removed comes back. Returns whether one was lifted."""
    _not_self(blocker, blocked)
    event = new_event("connections", "block.removed", {"blocker": blocker, "blocked": blocked,
                                                        "at": rfc3339(now_ms()), "version": PENDING_VERSION})
    reply = keys.UNBLOCK(store, keys={"relationship": keys.relationship(blocker, blocked),
                                      "outbox": outbox.key_for(keys.pair_tag(blocker, blocked))},
                         blocker=blocker, event=outbox.xadd_args(event))
    if reply[0] == "unblocked":
        projections.project(store, blocker, blocked)
    return reply[0] == "unblocked"


def page(store: redis.Redis, blocker: str, limit: int, cursor: str | None) -> tuple[list[tuple[str, int]], str | None]:
    """The members ``blocker`` has blocked, newest first: only the blocker sees their list."""
    items, next_cursor = zset_page(store, keys.blocks(blocker), limit, cursor)
    return [(member, int(score)) for member, score in items], next_cursor
