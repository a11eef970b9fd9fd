"""The follows worker: its outbox relay, the replica of connections.events, its member replica."""
from __future__ import annotations

from services.follows.handlers import HANDLERS
from shared import members
from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    return [Consumer(name="follows.connections", service="follows", topics=("connections.events",),
                     handlers=dict(HANDLERS)),
            members.consumer("follows")]
