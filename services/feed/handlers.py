"""What the feed service does with incoming events: keep its audience replica, fan out.

Handlers are idempotent (sets and sorted sets; a timeline ZADD twice is one entry) and
skip stale events (by the aggregate's version, see ``audience``); the consumer runner
deduplicates and commits after the effects. Every effect goes through the keys of one
member's (or one post's) slot: the replica's sides are single-slot scripts run at once
(their words decide the timeline work), the timelines are written per slot and node.
"""
from __future__ import annotations

from services.feed import audience, fanout, posts
from services.feed import store as keys
from services.feed.timelines import Timelines
from shared.bus.consumer import Effects
from shared.clock import parse_rfc3339
from shared.events import Event


def _timelines(fx: Effects) -> Timelines:
    return fx.extra["timelines"]


# --- follows.events ---------------------------------------------------------------------

def on_follow_created(event: Event, fx: Effects) -> None:
    """Record the follow, then backfill the followee's recent visible posts.

    The edge is written before the backfill reads the posts (in the same round trip on one
    node): a post stored meanwhile is then either read here or fanned out to the new follower,
    never neither. A redelivery finds the edge applied ('current') and backfills again, which
    changes nothing.
    """
    d = event.data
    applied, recent = audience.follow_reading_recent(fx.store, fx.settings, d["follower"], d["followee"],
                                                     parse_rfc3339(d["since"]), d["version"])
    if applied != audience.STALE:
        _timelines(fx).fan_out([d["follower"]], recent)


def on_follow_removed(event: Event, fx: Effects) -> None:
    d = event.data
    if audience.unfollow(fx.store, fx.settings, d["follower"], d["followee"], d["version"]) != audience.STALE:
        _timelines(fx).take_out(fx.store, d["follower"], d["followee"])


# --- connections.events -----------------------------------------------------------------
# Each member's side of a pair is applied in that member's slot; the timeline work follows
# for the sides that changed.

def on_invitation_accepted(event: Event, fx: Effects) -> None:
    d = event.data
    changed = audience.change_pair(fx.store, d["inviter"], d["invitee"], "connect", d["version"])
    # The mutual follows arrive from follows.events (reason "connection") with their backfill;
    # an author followed already has connections-only posts to bring in now.
    sides = [(member, other) for member, other in ((d["inviter"], d["invitee"]), (d["invitee"], d["inviter"]))
             if member in changed]
    for (member, other), followed in zip(sides, audience.follows_each(fx.store, sides)):
        if followed:
            _timelines(fx).backfill(fx.store, member, other, connected=True)


def _end_connection(fx: Effects, a: str, b: str, change: str, version: int, at: str) -> None:
    """Take each member's side out of the other's timeline, then record the end in the replica:
    once a read sees the end (a post now hidden), the timeline no longer shows the other's posts."""
    for member in audience.unstale_sides(fx.store, a, b, version):
        _timelines(fx).take_out(fx.store, member, b if member == a else a)
    audience.change_pair(fx.store, a, b, change, version, parse_rfc3339(at))


def on_connection_removed(event: Event, fx: Effects) -> None:
    d = event.data
    _end_connection(fx, d["remover"], d["other"], "disconnect", d["version"], d["at"])


def on_block_added(event: Event, fx: Effects) -> None:
    d = event.data
    _end_connection(fx, d["blocker"], d["blocked"], "block", d["version"], d["at"])


def on_block_removed(event: Event, fx: Effects) -> None:
    d = event.data
    audience.change_pair(fx.store, d["blocker"], d["blocked"], "unblock", d["version"])


# --- feed.events and feed.fanout --------------------------------------------------------

def on_post_created(event: Event, fx: Effects) -> None:
    """Fan a new post out: the handler writes up to ``fanout_inline_limit`` members itself, in
    large server-side batches; the rest of a bigger audience goes out through feed.fanout."""
    d = event.data
    if not fanout.post_exists(fx.store, d["post_id"]):
        return  # deleted before its fan-out
    if d.get("reshare_of"):
        # Counted by the request already, unless it died in between: by the reshare's id, once.
        posts.count_reshare(fx.store, d["reshare_of"], d["post_id"], 1)
    created_ms = parse_rfc3339(d["created_at"])
    members = fanout.plan(fx.store, fx.settings, d["author"], d["visibility"])
    inline = fx.settings.fanout_inline_limit
    if members is not None and len(members) > inline:
        # Stored with the dedup marker when this handler returns, then relayed to the workers.
        rest = members[inline:]
        fx.outbox.add(fx.tx, *fanout.batches(dict(d, created_ms=created_ms), rest, fx.settings.fanout_batch_size,
                                             first=1), tag=keys.post_shard(d["post_id"]))
        fx.wake_relays()  # the followers wait: relayed at once, not at an awake relay's next read
        members = members[:inline]
    _timelines(fx).fan_out([d["author"], *(members or ())], [(d["post_id"], created_ms)])


def on_fanout_batch(event: Event, fx: Effects) -> None:
    d = event.data
    _timelines(fx).fan_out(d["members"], [(d["post_id"], d["created_ms"])])
