"""The profiles worker: its outbox relay, the replica of connections.events, and what follows
from its own profiles.events (search index, lists of recommendations given, erasure)."""
from __future__ import annotations

from services.profiles.handlers import MEMBER_HANDLERS, NETWORK_HANDLERS
from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    return [
        Consumer(name="profiles.network", service="profiles", topics=("connections.events",),
                 handlers=dict(NETWORK_HANDLERS)),
        Consumer(name="profiles.members", service="profiles", topics=("profiles.events",),
                 handlers=dict(MEMBER_HANDLERS)),
    ]

