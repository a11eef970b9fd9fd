"""The follows worker: its outbox relay, the replica of connections.events, and the followees'
followers projected from follows.events, its member replica."""
from __future__ import annotations

from services.follows import closing
from services.follows.handlers import FOLLOWERS_HANDLERS, HANDLERS, edges_ahead, pairs_ahead
from shared import members
from shared.bus.consumer import Consumer
from shared.settings import Settings


def consumers(settings: Settings) -> list[Consumer]:
    # A handler reads only its pair's version (a batch split by key keeps it exact: all of them
    # read ahead in one round trip, with the follow settings); the rest of what it does runs in
    # scripts, in order, inside the batch's one MULTI/EXEC.
    return [Consumer(name="follows.connections", service="follows", topics=("connections.events",),
                     handlers=dict(HANDLERS), batch_size=100, batch_by_key=True, reads_ahead=pairs_ahead),
            # Reads only the edge (the requests write it), queues the projection: a batch reads
            # its edges in one round trip and shares one MULTI/EXEC per slot.
            Consumer(name="follows.followers", service="follows", topics=("follows.events",),
                     handlers=dict(FOLLOWERS_HANDLERS), batch_size=100, reads_ahead=edges_ahead),
            members.consumer("follows", erase=closing.erase)]
