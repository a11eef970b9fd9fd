"""The live stream of a member's notifications, as server-sent events.

Each new (or grown) notification is appended to the member's capped Redis stream in the
same script that stores it. A client reads from a stream entry id on: the entry ids are the
SSE event ids, so a client that reconnects with ``Last-Event-ID`` gets what it missed, as
far back as the stream keeps (``inbox.LIVE_CAP`` entries); older history is in the list.
"""
from __future__ import annotations

import json
import re
import time
from typing import Iterator

import redis

from services.notifications import inbox
from services.notifications import store as keys
from shared.clock import rfc3339
from shared.problems import Invalid

STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")

# How long one XREAD blocks, and so the keep-alive period. Short, because a client that went
# away is only noticed when something is written to it: until then its stream holds a Redis
# connection (and holds up a graceful shutdown).
KEEPALIVE_SECONDS = 5.0

# A stream ends after this long and the client reconnects with Last-Event-ID (nothing is lost):
# connections spread again over the API's workers, e.g. after a deploy.
MAX_STREAM_SECONDS = 300.0

# Tell EventSource clients how soon to reconnect (ms).
RETRY_MS = 2000


def start_after(store: redis.Redis, member: str, last_event_id: str | None) -> str:
    """The stream position to send from: after ``last_event_id``, else after the newest entry now."""
    if last_event_id:
        if not STREAM_ID.match(last_event_id):
            raise Invalid({"Last-Event-ID": ["Not an event id this stream sent."]}, code="invalid_last_event_id")
        return last_event_id
    newest = store.xrevrange(keys.live(member), count=1)
    return newest[0][0] if newest else "0-0"


def body(n: inbox.Notification) -> dict:
    """A notification as the API shows it."""
    return {"id": n.id, "type": n.type, "actors": n.actors, "actor_count": n.actor_count, "object": n.object,
            "summary": n.summary, "text": n.text, "created_at": rfc3339(n.created_at_ms), "read": n.read}


def events(store: redis.Redis, member: str, after: str, keepalive: float = KEEPALIVE_SECONDS,
           lifetime: float = MAX_STREAM_SECONDS) -> Iterator[str]:
    """Server-sent events for ``member`` from stream position ``after`` on, until the client goes
    or ``lifetime`` seconds have passed."""
    yield f"retry: {RETRY_MS}\n: connected\n\n"
    key = keys.live(member)
    ends = time.monotonic() + lifetime
    while time.monotonic() < ends:
        reply = store.xread({key: after}, count=100, block=int(keepalive * 1000))
        if not reply:
            yield ": keep-alive\n\n"
            continue
        entries = reply[0][1]
        after = entries[-1][0]
        latest: dict[str, str] = {}  # a group that grew twice in one read is sent once, as it is now
        for entry_id, fields in entries:
            latest.pop(fields["id"], None)
            latest[fields["id"]] = entry_id
        shown = {n.id: n for n in inbox.load(store, member, list(latest))}
        chunk = []
        for nid, entry_id in latest.items():
            if nid in shown:  # dropped by the cap meanwhile: nothing to show
                chunk.append(f"id: {entry_id}\nevent: notification\ndata: {json.dumps(body(shown[nid]))}\n\n")
        if chunk:
            yield "".join(chunk)
