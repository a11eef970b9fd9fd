"""The messaging stream: new messages and read receipts in a member's conversations, as
server-sent events, with the machinery of ``shared/live.py`` (shared with the notifications
stream). The worker appends each to the member's capped stream as it projects the event
(``store.PROJECT``); the stream shows what the conversation's record holds when it is sent,
and leaves out a conversation the member may no longer see (a block since)."""
from __future__ import annotations

import json
from collections.abc import Iterator

import redis

from services.messaging.conversations import (
    Message,
    Messaging,
    message_id,
    visible_messages,
)
from shared import live as sse
from shared.clock import rfc3339

TICKET_ISSUER = "POST /v1/conversations/stream-ticket"


def message_body(message: Message) -> dict:
    return {"id": message.id, "conversation_id": message.conversation_id, "sender": message.sender,
            "text": message.text, "sent_at": rfc3339(message.sent_at_ms)}


def events(hub: sse.LiveHub, m: Messaging, member: str, after: str,
           lifetime: float = sse.MAX_STREAM_SECONDS) -> Iterator[str]:
    """Server-sent ``message`` and ``read`` events for ``member`` from stream position ``after`` on."""
    def render(store: redis.Redis, viewer: str, entries) -> str:
        return _chunk(m, viewer, entries)
    return sse.events(hub, member, after, render, lifetime)


def _chunk(m: Messaging, member: str, entries) -> str:
    wanted: dict[str, list[int]] = {}
    for _, fields in entries:
        seqs = wanted.setdefault(fields["conversation_id"], [])
        if fields["type"] == "message":
            seqs.append(int(fields["seq"]))
    # At most two round trips whatever the batch (one once the process knows the conversations):
    # the conversations and messages, and the blocks and closed accounts they need.
    visible, messages = visible_messages(m, member, wanted)
    out = []
    for entry_id, fields in entries:
        cid = fields["conversation_id"]
        if cid not in visible:
            continue
        if fields["type"] == "message":
            msg = messages.get((cid, int(fields["seq"])))
            if msg is not None:
                out.append(f"id: {entry_id}\nevent: message\ndata: {json.dumps(message_body(msg))}\n\n")
        elif fields.get("member") in visible[cid].participants:
            receipt = {"conversation_id": cid, "member": fields["member"],
                       "read_up_to": message_id(cid, int(fields["seq"]))}
            out.append(f"id: {entry_id}\nevent: read\ndata: {json.dumps(receipt)}\n\n")
    return "".join(out)
