"""Each member's list of conversations: a projection of messaging.events in the member's shard.

The worker applies every ``message.sent`` and ``conversation.read`` to each participant's list
(``store.PROJECT``), idempotently and only when the event's conversation version is newer than
the one stored beside the entry, and appends it to the member's live stream. Reads hydrate a
page of the list from the conversations' own records, so what a page shows (last message,
unread count, participants) is current even while the list's order lags by milliseconds.
"""
from __future__ import annotations

import redis

from services.messaging.conversations import Conversation, Messaging, hydrate
from services.messaging.store import CLOSE_MEMBER, HIDE, LIVE_CAP, PROJECT, bell
from shared.clock import parse_rfc3339
from shared.events import Event
from shared.pages import encode_cursor, zset_page


def project_message(m: Messaging, tx: redis.client.Pipeline, event: Event) -> None:
    """Queue ``message.sent`` onto every participant's list and live stream."""
    d = event.data
    score = parse_rfc3339(d["sent_at"])
    for member in d["participants"]:
        _project(m, tx, member, d["conversation_id"], d["version"], "message", score,
                 "0" if member == d["sender"] else "1",
                 ["type", "message", "conversation_id", d["conversation_id"], "seq", d["seq"]])


def project_read(m: Messaging, tx: redis.client.Pipeline, event: Event) -> None:
    """Queue ``conversation.read``: the reader's unread marker, and every participant's live stream."""
    d = event.data
    for member in d["participants"]:
        unread = ("1" if d["unread_count"] else "0") if member == d["member"] else ""
        _project(m, tx, member, d["conversation_id"], d["version"], "read", 0, unread,
                 ["type", "read", "conversation_id", d["conversation_id"], "member", d["member"],
                  "seq", d["up_to"]])


def _project(m: Messaging, tx, member: str, conversation_id: str, version: int, kind: str, score: int,
             unread: str, entry: list) -> None:
    k = m.keys
    PROJECT(tx, pipe=tx, keys={"entries": k.entries(member), "inbox": k.inbox(member), "unread": k.unread(member),
                               "live": k.live_stream(member), "closed": k.closed(member)},
            conversation_id=conversation_id, version=version, kind=kind, score=score, unread=unread,
            live_cap=LIVE_CAP, bell=bell(member), entry=entry)


def close_member(m: Messaging, tx: redis.client.Pipeline, member: str, version: int) -> None:
    """Queue the erasure of a closed account's list, unread markers and live stream."""
    k = m.keys
    CLOSE_MEMBER(tx, pipe=tx, keys={"closed": k.closed(member), "entries": k.entries(member),
                                    "inbox": k.inbox(member), "unread": k.unread(member),
                                    "live": k.live_stream(member)}, version=version)


def hide(m: Messaging, member: str, conversation: Conversation) -> None:
    """Hide ``conversation`` from ``member``'s list, for them alone, until a newer message."""
    k = m.keys
    HIDE(m.store, keys={"entries": k.entries(member), "inbox": k.inbox(member), "unread": k.unread(member)},
         conversation_id=conversation.id, version=conversation.version)


def page(m: Messaging, member: str, limit: int, cursor: str | None) -> tuple[list[Conversation], str | None]:
    """A page of ``member``'s conversations, newest activity first.

    The cursor names the last one shown by (activity, id): a conversation that moves to the top
    meanwhile is not shown twice, and none below it is skipped. Conversations a block hides are
    left out without shortening the page."""
    shown: list[tuple[Conversation, float]] = []
    next_cursor, whole = None, True
    while len(shown) < limit:
        items, next_cursor = zset_page(m.store, m.keys.inbox(member), limit - len(shown), cursor)
        visible = hydrate(m, member, [cid for cid, _ in items])
        kept = [(visible[cid], score) for cid, score in items if cid in visible]
        whole = len(kept) == len(items)
        shown += kept
        if next_cursor is None:
            break
        cursor = next_cursor
    if len(shown) < limit or next_cursor is None:
        return [c for c, _ in shown], None
    # The last batch ended on its last item shown: its cursor is the page's.
    if whole:
        return [c for c, _ in shown], next_cursor
    last = shown[-1]
    return [c for c, _ in shown], (encode_cursor(last[1], last[0].id) if _has_after(m, member, last) else None)


def _has_after(m: Messaging, member: str, last: tuple[Conversation, float]) -> bool:
    items, _ = zset_page(m.store, m.keys.inbox(member), 1, encode_cursor(last[1], last[0].id))
    return bool(items)


def unread_count(m: Messaging, member: str) -> int:
    """How many of ``member``'s conversations hold messages they have not read (those a block
    hides left out)."""
    held = list(m.store.smembers(m.keys.unread(member)))
    return sum(1 for c in hydrate(m, member, held).values() if c.unread.get(member))
