"""The events the notifications service consumes, and the fields of each it relies on (see
handlers.py).

tests/contract holds producers to it: a type or field listed here that a producer's schema or
its emitted events stop providing fails the build. Keep it in step with ``worker.consumers``.
"""

from shared import members

CONSUMES: dict[str, tuple[str, ...]] = {
    "rapport.connections.invitation.sent.v1": ("invitation_id", "inviter", "invitee", "message", "sent_at",
                                               "introduced_by"),
    "rapport.connections.invitation.accepted.v1": ("invitation_id", "inviter", "invitee", "at", "version"),
    "rapport.connections.connection.removed.v1": ("remover", "other", "version"),
    "rapport.connections.block.added.v1": ("blocker", "blocked", "version"),
    "rapport.connections.introduction.requested.v1": ("introduction_id", "requester", "target", "via", "note",
                                                      "at"),
    "rapport.connections.introduction.forwarded.v1": ("introduction_id", "requester", "target", "via", "at"),
    "rapport.connections.introduction.declined.v1": ("introduction_id", "requester", "target", "via", "at"),
    "rapport.connections.endorsement.added.v1": ("endorser", "endorsee", "skill", "at"),
    "rapport.follows.follow.created.v1": ("follower", "followee", "reason", "notify_on_post", "since",
                                          "version"),
    "rapport.follows.follow.updated.v1": ("follower", "followee", "notify_on_post", "version"),
    "rapport.follows.follow.removed.v1": ("follower", "followee", "version"),
    "rapport.feed.post.created.v1": ("post_id", "author", "visibility", "created_at", "reshare_of",
                                     "reshare_of_author", "excerpt", "disconnected"),
    "rapport.feed.post.liked.v1": ("post_id", "author", "actor", "at"),
    "rapport.feed.comment.added.v1": ("post_id", "author", "commenter", "excerpt", "at"),
    "rapport.profiles.recommendation.written.v1": ("recommendation_id", "author", "recipient", "excerpt", "at"),
    **members.CONSUMES,
}
