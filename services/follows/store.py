"""Every Redis key of the follows service, and nothing else touches them.

Member ids sit in hash tags (``{ada}``) so a member's keys can share a cluster slot.
"""
from __future__ import annotations


def following(member: str) -> str:
    """Sorted set: whom ``member`` follows, scored by when (ms)."""
    return f"following:{{{member}}}"


def followers(member: str) -> str:
    """Sorted set: who follows ``member``, scored by when (ms)."""
    return f"followers:{{{member}}}"


def alerts(member: str) -> str:
    """Set: the followees ``member`` gets post alerts for."""
    return f"alerts:{{{member}}}"
