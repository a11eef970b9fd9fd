"""The profiles worker: its outbox relay, the replica of connections.events, and what follows
from its own profiles.events (search index, lists of recommendations given, erasure)."""
from __future__ import annotations

from services.profiles.handlers import MEMBER_HANDLERS, NETWORK_HANDLERS, members_ahead
from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    return [
        # Each side's script applies only a newer pair version, so a batch's changes run in
        # order in its MULTI/EXEC; the members' records (the profiles.members consumer's) are
        # read for the whole batch in one round trip.
        Consumer(name="profiles.network", service="profiles", topics=("connections.events",),
                 handlers=dict(NETWORK_HANDLERS), batch_size=100, reads_ahead=members_ahead),
        Consumer(name="profiles.members", service="profiles", topics=("profiles.events",),
                 handlers=dict(MEMBER_HANDLERS)),
    ]

