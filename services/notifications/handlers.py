"""What the notifications service does with incoming events."""
from __future__ import annotations

from services.notifications.inbox import notify
from shared.bus.consumer import Effects
from shared.clock import parse_rfc3339
from shared.events import Event


def on_follow_created(event: Event, fx: Effects) -> None:
    """A new follower, for explicit follows only: the automatic follow of a connection is silent."""
    data = event.data
    if data["reason"] != "explicit":
        return
    notify(fx.tx, data["followee"], event.id, "new_follower", [data["follower"]], data["follower"],
           f"{data['follower']} started following you", parse_rfc3339(data["since"]))
