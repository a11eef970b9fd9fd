"""The notifications worker: the inbox consumer of every topic, and its member replica."""
from __future__ import annotations

from services.notifications import closing
from services.notifications import store as keys
from services.notifications.handlers import HANDLERS
from shared import members
from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    keys.use_shards(settings.shards)
    return [
        Consumer(
            name="notifications.inbox",
            service="notifications",
            topics=("connections.events", "follows.events", "feed.events", "profiles.events"),
            handlers=HANDLERS,
            # Handlers read only replicas fed by other partitions, and decide grouping inside the
            # inbox script: they may share one transaction per batch.
            batch_size=100,
        ),
        members.consumer("notifications", erase=closing.erase),
    ]
