"""The connections worker: its outbox relay, the consumer of connections.events that projects
each pair's record onto both members and keeps people-you-may-know lists precomputed, its member
replica (profiles.events), and the loop that recomputes the lists reads found old."""
from __future__ import annotations

from services.connections import closing, suggestions
from services.connections.handlers import HANDLERS, records_ahead
from shared import members
from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    # Handlers read their own pair's record (exact in a batch split by key: all of them read in
    # one round trip ahead) and the graph as it is now (written by the requests): a batch of a
    # partition shares one dedup read and EXEC.
    return [Consumer(name="connections.suggestions", service="connections", topics=("connections.events",),
                     handlers=dict(HANDLERS), batch_size=100, batch_by_key=True, reads_ahead=records_ahead),
            members.consumer("connections", erase=closing.erase)]


def tasks(settings: Settings) -> dict:
    """Loops run beside the consumers: name → ``fn(stop, store)``."""
    return {"connections.suggestions-due": suggestions.refresh_due}
