"""The follows worker: its outbox relay, the replica of connections.events, and the followees'
followers projected from follows.events."""
from __future__ import annotations

from services.follows.handlers import FOLLOWERS_HANDLERS, HANDLERS
from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    return [Consumer(name="follows.connections", service="follows", topics=("connections.events",),
                     handlers=dict(HANDLERS)),
            Consumer(name="follows.followers", service="follows", topics=("follows.events",),
                     handlers=dict(FOLLOWERS_HANDLERS))]
