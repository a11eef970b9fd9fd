"""What the feed service does with incoming events: keep its audience replica, fan out.

Handlers are idempotent (sets and sorted sets; a timeline ZADD twice is one entry) and
skip stale events (by the aggregate's version, see ``audience``); the consumer runner
deduplicates and commits after the effects.
"""
from __future__ import annotations

from services.feed import audience, fanout
from services.feed.timelines import Timelines
from shared.bus.consumer import Effects
from shared.clock import parse_rfc3339
from shared.events import Event


def _timelines(fx: Effects) -> Timelines:
    return fx.extra["timelines"]


# --- follows.events ---------------------------------------------------------------------

def on_follow_created(event: Event, fx: Effects) -> None:
    """Record the follow, then backfill the followee's recent visible posts.

    The edge is written before the backfill reads the posts (its own transaction, not the
    runner's): a post stored meanwhile is then either read here or fanned out to the new
    follower, never neither. Re-applying the edge on redelivery changes nothing.
    """
    d = event.data
    with fx.store.pipeline(transaction=True) as tx:
        applied = audience.follow(tx, fx.store, fx.settings, d["follower"], d["followee"],
                                  parse_rfc3339(d["since"]), d["version"])
        tx.execute()
    if applied:
        _timelines(fx).backfill(fx.store, d["follower"], d["followee"])


def on_follow_removed(event: Event, fx: Effects) -> None:
    d = event.data
    if audience.unfollow(fx.tx, fx.store, fx.settings, d["follower"], d["followee"], d["version"]):
        _timelines(fx).take_out(fx.store, d["follower"], d["followee"])


# --- connections.events -----------------------------------------------------------------

def on_invitation_accepted(event: Event, fx: Effects) -> None:
    d = event.data
    if not audience.connect(fx.tx, fx.store, d["inviter"], d["invitee"], d["version"]):
        return
    # The mutual follows arrive from follows.events (reason "connection") with their backfill;
    # an author followed already has connections-only posts to bring in now.
    for member, other in ((d["inviter"], d["invitee"]), (d["invitee"], d["inviter"])):
        if audience.follows(fx.store, member, other):
            _timelines(fx).backfill(fx.store, member, other, connected=True)


def on_connection_removed(event: Event, fx: Effects) -> None:
    d = event.data
    if not audience.disconnect(fx.tx, fx.store, d["remover"], d["other"], d["version"], parse_rfc3339(d["at"])):
        return
    _timelines(fx).take_out(fx.store, d["remover"], d["other"])
    _timelines(fx).take_out(fx.store, d["other"], d["remover"])


def on_block_added(event: Event, fx: Effects) -> None:
    d = event.data
    if not audience.block(fx.tx, fx.store, d["blocker"], d["blocked"], d["version"], parse_rfc3339(d["at"])):
        return
    _timelines(fx).take_out(fx.store, d["blocker"], d["blocked"])
    _timelines(fx).take_out(fx.store, d["blocked"], d["blocker"])


def on_block_removed(event: Event, fx: Effects) -> None:
    d = event.data
    audience.unblock(fx.tx, fx.store, d["blocker"], d["blocked"], d["version"])


# --- feed.events and feed.fanout --------------------------------------------------------

def on_post_created(event: Event, fx: Effects) -> None:
    """Fan a new post out: the handler writes up to ``fanout_inline_limit`` members itself, in
    large server-side batches; the rest of a bigger audience goes out through feed.fanout."""
    d = event.data
    if not fanout.post_exists(fx.store, d["post_id"]):
        return  # deleted before its fan-out
    created_ms = parse_rfc3339(d["created_at"])
    members = fanout.plan(fx.store, fx.settings, d["author"], d["visibility"])
    inline = fx.settings.fanout_inline_limit
    if members is not None and len(members) > inline:
        # Stored with the dedup marker when this handler returns, then relayed to the workers.
        rest = members[inline:]
        fx.outbox.add(fx.tx, *fanout.batches(dict(d, created_ms=created_ms), rest, fx.settings.fanout_batch_size,
                                             first=1))
        members = members[:inline]
    _timelines(fx).fan_out([d["author"], *(members or ())], [(d["post_id"], created_ms)])


def on_fanout_batch(event: Event, fx: Effects) -> None:
    d = event.data
    _timelines(fx).fan_out(d["members"], [(d["post_id"], d["created_ms"])])
