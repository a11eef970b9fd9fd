"""Who hears about a new post: the notifications service's replicas of post alerts and connections.

Both are built from the other services' events (never read from their stores). Events of one
follow edge share a Kafka key, as do events of one member pair, so each replica sees a
relationship's changes in order.
"""
from __future__ import annotations

import redis

from services.notifications import store as keys


def set_post_alerts(tx: redis.client.Pipeline, follower: str, author: str, on: bool) -> None:
    """Queue: ``follower`` does (or no longer does) want an alert for each post of ``author``."""
    if on:
        tx.sadd(keys.post_alerts(author), follower)
    else:
        tx.srem(keys.post_alerts(author), follower)


def connect(tx: redis.client.Pipeline, a: str, b: str) -> None:
    tx.sadd(keys.connections(a), b)
    tx.sadd(keys.connections(b), a)


def disconnect(tx: redis.client.Pipeline, a: str, b: str) -> None:
    tx.srem(keys.connections(a), b)
    tx.srem(keys.connections(b), a)


def post_audience(store: redis.Redis, author: str, visibility: str) -> set[str]:
    """Members to alert of ``author``'s new post: followers with alerts on, and for a
    connections-only post only those who are also connections."""
    if visibility == "connections":
        return store.sinter(keys.post_alerts(author), keys.connections(author))
    return store.smembers(keys.post_alerts(author))
