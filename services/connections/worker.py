"""The connections worker: only its outbox relay, since connections consumes no events."""
from __future__ import annotations

from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    return []
