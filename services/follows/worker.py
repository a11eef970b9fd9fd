"""The follows worker: its outbox relay (consumers of connections.events come with the service)."""
from __future__ import annotations

from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    return []
