"""The events the connections service consumes (its own: the members' projections of each pair
and people you may know, see handlers.py),
and the fields of each it relies on.

tests/contract holds producers to it: a type or field listed here that a producer's schema or
its emitted events stop providing fails the build. Keep it in step with ``worker.consumers``.
"""

from shared import members

CONSUMES: dict[str, tuple[str, ...]] = {
    "rapport.connections.invitation.sent.v1": ("inviter", "invitee"),
    "rapport.connections.invitation.ignored.v1": ("inviter", "invitee"),
    "rapport.connections.invitation.withdrawn.v1": ("inviter", "invitee"),
    "rapport.connections.invitation.accepted.v1": ("inviter", "invitee", "at"),
    "rapport.connections.connection.removed.v1": ("remover", "other", "at"),
    "rapport.connections.block.added.v1": ("blocker", "blocked", "at"),
    "rapport.connections.block.removed.v1": ("blocker", "blocked", "at"),
    **members.CONSUMES,
}
