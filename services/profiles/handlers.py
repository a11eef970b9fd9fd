"""What the profiles service does with events: connections.events into its replica of the
network and the endorsement counts, its own profiles.events into the search index, the
authors' lists and the erasure of closed accounts."""
from __future__ import annotations

from services.profiles import members, network
from services.profiles.store import Keys
from shared.bus.consumer import Effects
from shared.events import Event


def _keys(fx: Effects) -> Keys:
    return Keys(fx.settings.shards)


def on_invitation_accepted(event: Event, fx: Effects) -> None:
    d = event.data
    network.pair_changed(fx.store, fx.tx, _keys(fx), d["inviter"], d["invitee"], d["version"], "connected", "connected",
                         fx.ahead)


def on_connection_removed(event: Event, fx: Effects) -> None:
    d = event.data
    network.pair_changed(fx.store, fx.tx, _keys(fx), d["remover"], d["other"], d["version"],
                         "disconnected", "disconnected", fx.ahead)


def on_block_added(event: Event, fx: Effects) -> None:
    d = event.data
    network.pair_changed(fx.store, fx.tx, _keys(fx), d["blocker"], d["blocked"], d["version"], "blocked", "blocked_by",
                         fx.ahead)


def on_block_removed(event: Event, fx: Effects) -> None:
    d = event.data
    network.pair_changed(fx.store, fx.tx, _keys(fx), d["blocker"], d["blocked"], d["version"],
                         "unblocked", "unblocked_by", fx.ahead)


def on_endorsement_added(event: Event, fx: Effects) -> None:
    d = event.data
    network.endorsed(fx.store, fx.tx, _keys(fx), d["endorser"], d["endorsee"], d["skill"], fx.ahead)


# The two members each connections event names.
MEMBER_FIELDS = {"invitation.accepted": ("inviter", "invitee"), "connection.removed": ("remover", "other"),
                 "block.added": ("blocker", "blocked"), "block.removed": ("blocker", "blocked"),
                 "endorsement.added": ("endorser", "endorsee")}


def members_ahead(store, events, settings) -> dict:
    """The records of the members a batch's events name, in one round trip (``reads_ahead``):
    written by the profiles.members consumer, never by this one."""
    named = [event.data[field] for event in events for field in MEMBER_FIELDS.get(event.name, ())]
    return network.members_now(store, Keys(settings.shards), named) if named else {}


NETWORK_HANDLERS = {
    "invitation.accepted": on_invitation_accepted,
    "connection.removed": on_connection_removed,
    "block.added": on_block_added,
    "block.removed": on_block_removed,
    "endorsement.added": on_endorsement_added,
}


def on_member_named(event: Event, fx: Effects) -> None:
    d = event.data
    members.named(fx.store, fx.tx, _keys(fx), d["member"], d["name"], d["version"])


def on_member_closed(event: Event, fx: Effects) -> None:
    members.closed(fx.store, fx.tx, _keys(fx), event.data["member"])


def on_recommendation_written(event: Event, fx: Effects) -> None:
    d = event.data
    members.recommendation_written(fx.store, fx.tx, _keys(fx), d["recommendation_id"], d["author"], d["recipient"],
                                   d["at"])


MEMBER_HANDLERS = {
    "member.registered": on_member_named,
    "member.updated": on_member_named,
    "member.closed": on_member_closed,
    "recommendation.written": on_recommendation_written,
}
