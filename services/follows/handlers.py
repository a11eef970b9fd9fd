"""What the follows service does with connections.events (keep its replica, adjust follows) and
with its own follows.events (keep each followee's followers, a projection of the edges)."""
from __future__ import annotations

from services.follows import network
from services.follows.following import edges_now, project_current
from shared.bus.consumer import Effects
from shared.clock import parse_rfc3339
from shared.events import Event


def on_invitation_accepted(event: Event, fx: Effects) -> None:
    d = event.data
    network.connected(fx.store, fx.tx, fx.outbox, d["inviter"], d["invitee"], parse_rfc3339(d["at"]), d["version"],
                      fx.ahead)


def on_connection_removed(event: Event, fx: Effects) -> None:
    d = event.data
    network.disconnected(fx.store, fx.tx, fx.outbox, d["remover"], d["other"], parse_rfc3339(d["at"]), d["version"],
                         because_blocked=d["reason"] == "blocked", known=fx.ahead)


def on_block_added(event: Event, fx: Effects) -> None:
    d = event.data
    network.blocked(fx.store, fx.tx, fx.outbox, d["blocker"], d["blocked"], parse_rfc3339(d["at"]), d["version"],
                    fx.ahead)


def on_block_removed(event: Event, fx: Effects) -> None:
    d = event.data
    network.unblocked(fx.store, fx.tx, fx.outbox, d["blocker"], d["blocked"], parse_rfc3339(d["at"]), d["version"],
                      fx.ahead)


# The two members each connections event names.
PAIR_FIELDS = {"invitation.accepted": ("inviter", "invitee"), "connection.removed": ("remover", "other"),
               "block.added": ("blocker", "blocked"), "block.removed": ("blocker", "blocked")}


def pairs_ahead(store, events, settings) -> dict:
    """Both sides' pair versions of a batch's events, and for new connections both members'
    follow settings, in one round trip (``reads_ahead``; a batch split by key holds each pair once)."""
    sides, settings_of = [], []
    for event in events:
        fields = PAIR_FIELDS.get(event.name)
        if fields:
            a, b = event.data[fields[0]], event.data[fields[1]]
            sides += [(a, b), (b, a)]
            if event.name == "invitation.accepted":
                settings_of += [a, b]
    return network.pairs_now(store, sides, settings_of) if sides else {}


HANDLERS = {
    "invitation.accepted": on_invitation_accepted,
    "connection.removed": on_connection_removed,
    "block.added": on_block_added,
    "block.removed": on_block_removed,
}


def on_follow_changed(event: Event, fx: Effects) -> None:
    """Created, updated or removed: the followee's followers follow the edge as it is now (its
    version decides; a late or repeated event changes nothing). The edge is read (so an edge
    erased with a closed account projects nothing), the projection queued on the batch's
    transaction."""
    pair = (event.data["follower"], event.data["followee"])
    project_current(fx.store, fx.tx, *pair, edge=fx.ahead.get(pair))


def edges_ahead(store, events, settings) -> dict:
    """The batch's edges, read in one round trip before its handlers (``reads_ahead``)."""
    return edges_now(store, [(e.data["follower"], e.data["followee"]) for e in events])


FOLLOWERS_HANDLERS = {
    "follow.created": on_follow_changed,
    "follow.updated": on_follow_changed,
    "follow.removed": on_follow_changed,
}
