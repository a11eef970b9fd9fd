"""The live stream of a member's notifications, as server-sent events.

The machinery (the per-process hub, the per-member cap, Last-Event-ID, keep-alives, tickets) is
``shared/live.py``, shared with the messaging stream; what is the notifications service's own
is here: its keys (``store.LIVE``) and how stream entries become ``notification`` events.

Each new (or grown) notification is appended to the member's capped Redis stream in the
same script that stores it (``store.NOTIFY``), which also rings the member's bell. A client
that reconnects with ``Last-Event-ID`` gets what it missed, as far back as the stream keeps
(``inbox.LIVE_CAP`` entries); older history is in the list.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import redis

from services.notifications import inbox
from services.notifications import store as keys
from shared import live as sse
from shared.clock import rfc3339

STREAM_ID = sse.STREAM_ID
KEEPALIVE_SECONDS = sse.KEEPALIVE_SECONDS
MAX_STREAM_SECONDS = sse.MAX_STREAM_SECONDS
is_stream_id = sse.is_stream_id

TICKET_ISSUER = "POST /v1/notifications/stream-ticket"


def start_after(store: redis.Redis, member: str, last_event_id: str | None) -> str:
    """The stream position to send from: after ``last_event_id``, else after the newest entry now."""
    return sse.start_after(store, keys.live(member), last_event_id)


def issue_ticket(store: redis.Redis, member: str, ttl_seconds: int) -> tuple[str, int]:
    """A single-use stream ticket for ``member`` (see ``shared.live.issue_ticket``)."""
    return sse.issue_ticket(store, keys.LIVE, member, ttl_seconds)


def redeem_ticket(store: redis.Redis, ticket: str) -> str:
    """The member ``ticket`` was issued to, using it up; a 401 ``invalid_stream_ticket`` otherwise."""
    return sse.redeem_ticket(store, keys.LIVE, ticket, TICKET_ISSUER)


def LiveHub(store: redis.Redis, streams_per_member: int, keepalive: float = KEEPALIVE_SECONDS) -> sse.LiveHub:
    """The process's hub of notification streams."""
    return sse.LiveHub(store, keys.LIVE, streams_per_member, keepalive, service="notifications")


def body(n: inbox.Notification) -> dict:
    """A notification as the API shows it."""
    return {"id": n.id, "type": n.type, "actors": n.actors, "actor_count": n.actor_count, "object": n.object,
            "summary": n.summary, "text": n.text, "created_at": rfc3339(n.created_at_ms), "read": n.read}


def events(hub: sse.LiveHub, member: str, after: str, lifetime: float = MAX_STREAM_SECONDS) -> Iterator[str]:
    """Server-sent ``notification`` events for ``member`` from stream position ``after`` on."""
    return sse.events(hub, member, after, _chunk, lifetime)


def _chunk(store: redis.Redis, member: str, entries) -> str:
    latest: dict[str, str] = {}  # a group that grew twice in one read is sent once, as it is now
    for entry_id, fields in entries:
        latest.pop(fields["id"], None)
        latest[fields["id"]] = entry_id
    shown = {n.id: n for n in inbox.load(store, member, list(latest))}
    return "".join(f"id: {entry_id}\nevent: notification\ndata: {json.dumps(body(shown[nid]))}\n\n"
                   for nid, entry_id in latest.items() if nid in shown)  # dropped by the cap meanwhile: skipped
