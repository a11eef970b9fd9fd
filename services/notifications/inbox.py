"""The rules of a member's inbox, as plain functions over the notifications store."""
from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from services.notifications import store as keys
from shared.pages import zset_page


@dataclass(frozen=True)
class Notification:
    id: str
    type: str
    actors: list[str]
    object: str | None
    summary: str
    created_at_ms: int
    read: bool


def notify(tx: redis.client.Pipeline, recipient: str, notification_id: str, type_: str, actors: list[str],
           obj: str | None, summary: str, at_ms: int) -> None:
    """Queue a new notification for ``recipient`` on ``tx``."""
    tx.hset(keys.notification(recipient, notification_id), mapping={
        "id": notification_id, "type": type_, "actors": json.dumps(actors), "object": obj or "",
        "summary": summary, "created_at_ms": at_ms,
    })
    tx.zadd(keys.inbox(recipient), {notification_id: at_ms})
    tx.sadd(keys.unread(recipient), notification_id)


def page(store: redis.Redis, member: str, limit: int, cursor: str | None) -> tuple[list[Notification], str | None]:
    ids, next_cursor = zset_page(store, keys.inbox(member), limit, cursor)
    with store.pipeline(transaction=False) as pipe:
        for nid, _ in ids:
            pipe.hgetall(keys.notification(member, nid))
        pipe.smembers(keys.unread(member))
        *rows, unread = pipe.execute()
    items = [
        Notification(row["id"], row["type"], json.loads(row["actors"]), row["object"] or None, row["summary"],
                     int(row["created_at_ms"]), row["id"] not in unread)
        for row in rows if row
    ]
    return items, next_cursor
