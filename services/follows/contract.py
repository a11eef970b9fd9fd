"""The events the follows service consumes, and the fields of each it relies on (see handlers.py).

tests/contract holds producers to it: a type or field listed here that a producer's schema or
its emitted events stop providing fails the build. Keep it in step with ``worker.consumers``.
"""

from shared import members

CONSUMES: dict[str, tuple[str, ...]] = {
    "rapport.connections.invitation.accepted.v1": ("inviter", "invitee", "at", "version"),
    "rapport.connections.connection.removed.v1": ("remover", "other", "reason", "at", "version"),
    "rapport.connections.block.added.v1": ("blocker", "blocked", "at", "version"),
    "rapport.connections.block.removed.v1": ("blocker", "blocked", "at", "version"),
    **members.CONSUMES,
    # Its own: the followees' followers are projections of the follows.
    "rapport.follows.follow.created.v1": ("follower", "followee"),
    "rapport.follows.follow.updated.v1": ("follower", "followee"),
    "rapport.follows.follow.removed.v1": ("follower", "followee"),
}
