"""Every Redis key of the notifications service. Member ids sit in hash tags."""
from __future__ import annotations


def inbox(member: str) -> str:
    """Sorted set: ``member``'s notification ids, scored by last activity (ms)."""
    return f"inbox:{{{member}}}"


def notification(member: str, notification_id: str) -> str:
    """Hash: one notification's fields."""
    return f"notification:{{{member}}}:{notification_id}"


def unread(member: str) -> str:
    """Set: ids of ``member``'s unread notifications (SCARD is the unread count)."""
    return f"unread:{{{member}}}"
