"""The feed worker: outbox relay, audience replica, fan-out planning, fan-out batches, member replica."""
from __future__ import annotations

from services.feed import closing, handlers
from services.feed import store as keys
from services.feed.timelines import Timelines
from shared import members
from shared.bus.consumer import Consumer
from shared.settings import Settings
from shared import store_client


def resources(settings: Settings) -> dict:
    """The timeline cache (a second Redis), handed to handlers as ``fx.extra``."""
    keys.use_shards(settings.shards)
    cache = store_client.connect(settings.cache_url)
    return {"cache": cache, "timelines": Timelines(cache, settings)}


def consumers(settings: Settings) -> list[Consumer]:
    keys.use_shards(settings.shards)
    return [
        Consumer(
            name="feed.audience",
            service="feed",
            topics=("follows.events", "connections.events"),
            handlers={
                "follow.created": handlers.on_follow_created,
                "follow.removed": handlers.on_follow_removed,
                "invitation.accepted": handlers.on_invitation_accepted,
                "connection.removed": handlers.on_connection_removed,
                "block.added": handlers.on_block_added,
                "block.removed": handlers.on_block_removed,
            },
            # Each handler reads only its own pair's or edge's state (a version, the edge),
            # which a batch split by key keeps exact; a follower count may be a batch old.
            batch_size=100,
            batch_by_key=True,
        ),
        Consumer(
            name="feed.posts",
            service="feed",
            topics=("feed.events",),
            handlers={"post.created": handlers.on_post_created},
            # A post's fan-out reads the post and its author's audience, which no post.created
            # writes, and writes the cache at once: a batch shares one dedup read and one EXEC.
            batch_size=100,
            # Followers wait for the post: a fetch returns as soon as a post.created arrived
            # (one is far below consumer_fetch_min_bytes, so it would wait the fetch's whole wait).
            fetch_min_bytes=1,
        ),
        Consumer(
            name="feed.fanout",
            service="feed",
            topics=("feed.fanout",),
            handlers={"fanout.batch": handlers.on_fanout_batch},
            max_poll_records=10,  # a batch is up to fanout_batch_size timeline writes
            fetch_min_bytes=1,  # the last, smaller batch of a post does not wait for more
        ),
        members.consumer("feed", erase=closing.erase),
    ]
