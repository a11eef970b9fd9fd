"""The notifications worker: the inbox consumer of every topic."""
from __future__ import annotations

from services.notifications import handlers
from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    return [
        Consumer(
            name="notifications.inbox",
            service="notifications",
            topics=("follows.events",),
            handlers={"follow.created": handlers.on_follow_created},
        )
    ]
