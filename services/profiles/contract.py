"""The events the profiles service consumes, and the fields of each it relies on (see handlers.py).

tests/contract holds producers to it: a type or field listed here that a producer's schema or
its emitted events stop providing fails the build. Keep it in step with ``worker.consumers``.
"""

CONSUMES: dict[str, tuple[str, ...]] = {
    "rapport.connections.invitation.accepted.v1": ("inviter", "invitee", "version"),
    "rapport.connections.connection.removed.v1": ("remover", "other", "version"),
    "rapport.connections.block.added.v1": ("blocker", "blocked", "version"),
    "rapport.connections.block.removed.v1": ("blocker", "blocked", "version"),
    "rapport.connections.endorsement.added.v1": ("endorser", "endorsee", "skill"),
    "rapport.profiles.member.registered.v1": ("member", "name", "version"),
    "rapport.profiles.member.updated.v1": ("member", "name", "version"),
    "rapport.profiles.member.closed.v1": ("member",),
    "rapport.profiles.recommendation.written.v1": ("recommendation_id", "author", "recipient", "at"),
}
