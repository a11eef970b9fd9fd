"""What the connections service does with its own connections.events: bring both members' sides
of the pair to the pair's record (``projections``), then have the people-you-may-know lists of
the two recomputed by the worker's refresh loop, so their next read finds them ready."""
from __future__ import annotations

from services.connections import projections, suggestions
from shared.bus.consumer import Effects
from shared.clock import parse_rfc3339
from shared.events import Event


def _refresh_both(fx: Effects, a: str, b: str, at: str) -> None:
    """The two lists queued for the worker's refresh loop, their connections' lists flagged."""
    suggestions.queue_refresh(fx.store, fx.tx, (a, b), parse_rfc3339(at))
    suggestions.mark_network_stale(fx.store, fx.tx, (a, b))


def _project(fx: Effects, a: str, b: str, tx=None) -> None:
    """Both sides to the pair's record: as the batch read it ahead, else read now."""
    projections.project(fx.store, a, b, tx=tx, record=fx.ahead.get((a, b)))


def on_invitation_changed(event: Event, fx: Effects) -> None:
    """Sent, ignored or withdrawn: the two members' invitation lists follow the pair's record
    (queued on the batch's transaction: nothing after it in the batch reads them)."""
    _project(fx, event.data["inviter"], event.data["invitee"], tx=fx.tx)


def on_invitation_accepted(event: Event, fx: Effects) -> None:
    """Each now reaches the other's network at 2nd degree."""
    _project(fx, event.data["inviter"], event.data["invitee"])
    _refresh_both(fx, event.data["inviter"], event.data["invitee"], event.data["at"])


def on_connection_removed(event: Event, fx: Effects) -> None:
    """Each loses the other's network (unless shared through someone else)."""
    _project(fx, event.data["remover"], event.data["other"])
    _refresh_both(fx, event.data["remover"], event.data["other"], event.data["at"])


def on_block_changed(event: Event, fx: Effects) -> None:
    """A block takes each out of the other's list (reads re-check it meanwhile); an unblock lets
    them back in, which only a recomputation can do."""
    _project(fx, event.data["blocker"], event.data["blocked"])
    _refresh_both(fx, event.data["blocker"], event.data["blocked"], event.data["at"])


# Who the pair of each event is, in the order its handler names them.
PAIR_FIELDS = {"invitation": ("inviter", "invitee"), "connection.removed": ("remover", "other"),
               "block": ("blocker", "blocked")}


def records_ahead(store, events, settings) -> dict:
    """The pair records of a batch's events, in one round trip before its handlers (``reads_ahead``).
    A batch split by key holds each pair once, and only the requests write a pair's record."""
    pairs = []
    for event in events:
        fields = PAIR_FIELDS.get(event.name) or PAIR_FIELDS.get(event.name.split(".")[0])
        if fields:
            pairs.append((event.data[fields[0]], event.data[fields[1]]))
    return projections.records_now(store, pairs)


HANDLERS = {
    "invitation.sent": on_invitation_changed,
    "invitation.ignored": on_invitation_changed,
    "invitation.withdrawn": on_invitation_changed,
    "invitation.accepted": on_invitation_accepted,
    "connection.removed": on_connection_removed,
    "block.added": on_block_changed,
    "block.removed": on_block_changed,
}
