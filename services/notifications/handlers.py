"""What the notifications service does with incoming events.

Every write goes on ``fx.tx``, the transaction that also carries the consumer's dedup
marker: an event delivered twice is stored once. Each write is one script in one member's
slot: a notification for N recipients is N scripts, one per recipient's inbox; a replicated
fact is one per member's side. The grouping decision is taken inside the inbox's script,
so it cannot race with another event.
"""
from __future__ import annotations

from services.notifications import audience
from services.notifications.inbox import notify
from shared.bus.consumer import Effects
from shared.clock import parse_rfc3339
from shared.events import Event


def _notify(fx: Effects, event: Event, recipient: str, type_: str, actor: str, obj: str | None, at: str,
            **extra) -> None:
    notify(fx.tx, recipient, event.id, type_, actor, obj, parse_rfc3339(at),
           window_hours=fx.settings.notification_group_window_hours, cap=fx.settings.notification_cap, **extra)


# --- connections.events --------------------------------------------------------------

def on_invitation_sent(event: Event, fx: Effects) -> None:
    d = event.data
    _notify(fx, event, d["invitee"], "invitation_received", d["inviter"], d["invitation_id"], d["sent_at"],
            text=d.get("message"), about=d.get("introduced_by"))


def on_invitation_accepted(event: Event, fx: Effects) -> None:
    d = event.data
    audience.connect(fx.tx, d["inviter"], d["invitee"], d["version"])
    _notify(fx, event, d["inviter"], "invitation_accepted", d["invitee"], d["invitation_id"], d["at"])


def on_connection_removed(event: Event, fx: Effects) -> None:
    """The other side is not notified; the replica forgets the connection."""
    d = event.data
    audience.disconnect(fx.tx, d["remover"], d["other"], d["version"])


def on_block_added(event: Event, fx: Effects) -> None:
    """No longer connected. The post alerts end with the follows: the follows service removes
    them both ways and says so in ``follow.removed``, in each edge's own order."""
    d = event.data
    audience.disconnect(fx.tx, d["blocker"], d["blocked"], d["version"])


def on_introduction_requested(event: Event, fx: Effects) -> None:
    d = event.data
    _notify(fx, event, d["via"], "introduction_requested", d["requester"], d["introduction_id"], d["at"],
            text=d.get("note"), about=d["target"])


def on_introduction_forwarded(event: Event, fx: Effects) -> None:
    """The target meets the requester, and the requester hears the outcome: "Grace introduced
    you to Linus" reads true for both, so both get the same type."""
    d = event.data
    _notify(fx, event, d["target"], "introduction_forwarded", d["via"], d["introduction_id"], d["at"],
            about=d["requester"])
    _notify(fx, event, d["requester"], "introduction_forwarded", d["via"], d["introduction_id"], d["at"],
            about=d["target"])


def on_introduction_declined(event: Event, fx: Effects) -> None:
    """Only the requester hears of a decline; the target never knew of the request."""
    d = event.data
    _notify(fx, event, d["requester"], "introduction_declined", d["via"], d["introduction_id"], d["at"],
            about=d["target"])


def on_endorsement_added(event: Event, fx: Effects) -> None:
    d = event.data
    _notify(fx, event, d["endorsee"], "endorsement_received", d["endorser"], d["skill"], d["at"])


# --- follows.events ------------------------------------------------------------------

def on_follow_created(event: Event, fx: Effects) -> None:
    """A new follower, for explicit follows only: the automatic follow of a connection is silent."""
    d = event.data
    audience.set_post_alerts(fx.tx, d["follower"], d["followee"], d["notify_on_post"], d["version"])
    if d["reason"] == "explicit":
        _notify(fx, event, d["followee"], "new_follower", d["follower"], None, d["since"])


def on_follow_updated(event: Event, fx: Effects) -> None:
    d = event.data
    audience.set_post_alerts(fx.tx, d["follower"], d["followee"], d["notify_on_post"], d["version"])


def on_follow_removed(event: Event, fx: Effects) -> None:
    d = event.data
    audience.set_post_alerts(fx.tx, d["follower"], d["followee"], False, d["version"])


# --- feed.events ---------------------------------------------------------------------

def on_post_created(event: Event, fx: Effects) -> None:
    """A reshare notifies the original's author; a post alerts the followers who asked for it
    and may see it as of the post (its excerpt is in the alert)."""
    d = event.data
    if d.get("reshare_of") and d.get("reshare_of_author"):
        _notify(fx, event, d["reshare_of_author"], "post_reshared", d["author"], d["reshare_of"], d["created_at"])
    for follower in audience.post_audience(fx.store, d["author"], d["visibility"], d["disconnected"]):
        _notify(fx, event, follower, "new_post", d["author"], d["post_id"], d["created_at"],
                text=d.get("excerpt") or None)


def on_post_liked(event: Event, fx: Effects) -> None:
    """An unlike does not retract: it is simply not handled."""
    d = event.data
    _notify(fx, event, d["author"], "post_liked", d["actor"], d["post_id"], d["at"])


def on_comment_added(event: Event, fx: Effects) -> None:
    d = event.data
    _notify(fx, event, d["author"], "post_commented", d["commenter"], d["post_id"], d["at"],
            text=d.get("excerpt") or None)


# --- profiles.events -----------------------------------------------------------------

def on_recommendation_written(event: Event, fx: Effects) -> None:
    """The recipient hears of a recommendation waiting for their decision (accept or hide)."""
    d = event.data
    _notify(fx, event, d["recipient"], "recommendation_received", d["author"], d["recommendation_id"], d["at"],
            text=d.get("excerpt") or None)


HANDLERS = {
    "invitation.sent": on_invitation_sent,
    "invitation.accepted": on_invitation_accepted,
    # invitation.ignored is deliberately absent: ignoring is silent.
    "connection.removed": on_connection_removed,
    "block.added": on_block_added,
    "introduction.requested": on_introduction_requested,
    "introduction.forwarded": on_introduction_forwarded,
    "introduction.declined": on_introduction_declined,
    "endorsement.added": on_endorsement_added,
    "follow.created": on_follow_created,
    "follow.updated": on_follow_updated,
    "follow.removed": on_follow_removed,
    "post.created": on_post_created,
    "post.liked": on_post_liked,
    "comment.added": on_comment_added,
    "recommendation.written": on_recommendation_written,
}
