"""The messaging worker: its outbox relay, its replica of connections and closed accounts, and
the projection of its own events onto each member's list and live stream."""
from __future__ import annotations

from services.messaging.handlers import INBOX_HANDLERS, NETWORK_HANDLERS
from shared import members
from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    return [
        Consumer(name="messaging.network", service="messaging", topics=("connections.events", "profiles.events"),
                 handlers=dict(NETWORK_HANDLERS)),
        # Each projection is one script that reads only the member's own entry: a batch of one
        # partition may share one transaction. Its fetches do not wait to fill up: the recipient's
        # live stream waits for each message.
        Consumer(name="messaging.inbox", service="messaging", topics=("messaging.events",),
                 handlers=dict(INBOX_HANDLERS), batch_size=100, fetch_min_bytes=1),
        members.consumer("messaging"),
    ]
