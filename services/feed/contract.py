"""The events the feed service consumes, and the fields of each it relies on (see handlers.py).

tests/contract holds producers to it: a type or field listed here that a producer's schema or
its emitted events stop providing fails the build. Keep it in step with ``worker.consumers``.
"""

from shared import members

CONSUMES: dict[str, tuple[str, ...]] = {
    # feed.audience: the replica of followers and connections, and timeline backfill / take-out.
    "rapport.follows.follow.created.v1": ("follower", "followee", "since", "version"),
    "rapport.follows.follow.removed.v1": ("follower", "followee", "version"),
    "rapport.connections.invitation.accepted.v1": ("inviter", "invitee", "version"),
    "rapport.connections.connection.removed.v1": ("remover", "other", "at", "version"),
    "rapport.connections.block.added.v1": ("blocker", "blocked", "at", "version"),
    "rapport.connections.block.removed.v1": ("blocker", "blocked", "version"),
    # feed.posts: fan-out of its own posts.
    "rapport.feed.post.created.v1": ("post_id", "author", "visibility", "created_at"),
    # feed.fanout: its own internal batches (services/feed/fanout.py).
    "rapport.feed.fanout.batch.v1": ("post_id", "members", "created_ms"),
    **members.CONSUMES,
}
