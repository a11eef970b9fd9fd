"""What the messaging service does with events: its replica of connections and blocks
(connections.events), closed accounts (profiles.events), and its own messaging.events, which
it projects onto each participant's list and live stream."""
from __future__ import annotations

from services.messaging import inbox, network
from services.messaging.conversations import Messaging
from shared.bus.consumer import Effects
from shared.events import Event


def _messaging(fx: Effects) -> Messaging:
    return Messaging(fx.store, fx.settings)


def on_invitation_accepted(event: Event, fx: Effects) -> None:
    d = event.data
    network.apply(fx.tx, _messaging(fx).keys, d["inviter"], d["invitee"], d["version"], connected=True)


def on_connection_removed(event: Event, fx: Effects) -> None:
    d = event.data
    network.apply(fx.tx, _messaging(fx).keys, d["remover"], d["other"], d["version"], connected=False)


def on_block_added(event: Event, fx: Effects) -> None:
    d = event.data
    network.apply(fx.tx, _messaging(fx).keys, d["blocker"], d["blocked"], d["version"], connected=False,
                  blocker=d["blocker"], block=True)


def on_block_removed(event: Event, fx: Effects) -> None:
    d = event.data
    network.apply(fx.tx, _messaging(fx).keys, d["blocker"], d["blocked"], d["version"],
                  blocker=d["blocker"], block=False)


def on_member_closed(event: Event, fx: Effects) -> None:
    m = _messaging(fx)
    inbox.close_member(m, fx.tx, event.data["member"], event.data["version"])
    network.forget(fx.store, fx.tx, m.keys, event.data["member"])


def on_message_sent(event: Event, fx: Effects) -> None:
    inbox.project_message(_messaging(fx), fx.tx, event)


def on_conversation_read(event: Event, fx: Effects) -> None:
    inbox.project_read(_messaging(fx), fx.tx, event)


NETWORK_HANDLERS = {
    "invitation.accepted": on_invitation_accepted,
    "connection.removed": on_connection_removed,
    "block.added": on_block_added,
    "block.removed": on_block_removed,
    "member.closed": on_member_closed,
}

INBOX_HANDLERS = {
    "message.sent": on_message_sent,
    "conversation.read": on_conversation_read,
}
