"""The events the messaging service consumes, and the fields of each it relies on (see handlers.py).

tests/contract holds producers to it. Keep it in step with ``worker.consumers``.
"""
from shared import members

CONSUMES: dict[str, tuple[str, ...]] = {
    **members.CONSUMES,
    "rapport.connections.invitation.accepted.v1": ("inviter", "invitee", "version"),
    "rapport.connections.connection.removed.v1": ("remover", "other", "version"),
    "rapport.connections.block.added.v1": ("blocker", "blocked", "version"),
    "rapport.connections.block.removed.v1": ("blocker", "blocked", "version"),
    "rapport.profiles.member.closed.v1": ("member", "version"),
    "rapport.messaging.message.sent.v1": ("conversation_id", "participants", "sender", "seq", "sent_at", "version"),
    "rapport.messaging.conversation.read.v1": ("conversation_id", "participants", "member", "up_to",
                                               "unread_count", "version"),
}
