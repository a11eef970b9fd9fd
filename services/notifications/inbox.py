"""The rules of a member's inbox, as plain functions over the notifications store."""
from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from services.notifications import store as keys
from shared.pages import zset_page
from shared.problems import NotFound

TYPES = ("invitation_received", "invitation_accepted", "new_follower", "new_post", "post_liked",
         "post_commented", "post_reshared", "introduction_requested", "introduction_forwarded",
         "endorsement_received", "introduction_declined", "recommendation_received")

# Types that gather into one notification per object within the grouping window.
GROUPED = ("new_follower", "post_liked", "post_commented", "post_reshared")

# How many of a notification's actors a page shows (newest first); actor_count has them all.
SHOWN_ACTORS = 10

# Entries kept in a member's live stream: how far back a reconnecting client can catch up.
LIVE_CAP = 200


@dataclass(frozen=True)
class Notification:
    id: str
    type: str
    actors: list[str]
    actor_count: int
    object: str | None
    text: str | None
    about: str | None
    created_at_ms: int  # last activity: a group that grows moves up
    read: bool

    @property
    def summary(self) -> str:
        return summary(self.type, self.actors, self.actor_count, self.object, self.text, self.about)


def who(actors: list[str], count: int) -> str:
    """``Ada`` · ``Ada and Grace`` · ``Ada and 3 others``."""
    if count <= 1 or len(actors) < 1:
        return actors[0] if actors else "Someone"
    if count == 2 and len(actors) >= 2:
        return f"{actors[0]} and {actors[1]}"
    return f"{actors[0]} and {count - 1} others"


# How each type reads. ``quoted`` is the text that came with it (message, note, excerpt);
# ``via`` names an invitation's introducer.
WORDING = {
    "invitation_received": "{name} invited you to connect{via}{quoted}",
    "invitation_accepted": "{name} accepted your invitation to connect",
    "new_follower": "{name} started following you",
    "new_post": "{name} posted{quoted}",
    "post_liked": "{name} liked your post",
    "post_commented": "{name} commented on your post{quoted}",
    "post_reshared": "{name} reshared your post",
    "introduction_requested": "{name} asks you to introduce them to {about}{quoted}",
    "introduction_forwarded": "{name} introduced you to {about}",
    "introduction_declined": "{name} declined to introduce you to {about}",
    "endorsement_received": "{name} endorsed you for {obj}",
    "recommendation_received": "{name} wrote you a recommendation{quoted}",
}


def summary(type_: str, actors: list[str], count: int, obj: str | None, text: str | None,
            about: str | None) -> str:
    """One line a member reads, e.g. "Ada and 3 others liked your post"."""
    via = f" (introduced by {about})" if about else ""
    quoted = f': "{text}"' if text else ""
    template = WORDING.get(type_, "{name}: " + type_)
    return template.format(name=who(actors, count), about=about, obj=obj, via=via, quoted=quoted)


def notify(tx: redis.client.Pipeline, recipient: str, notification_id: str, type_: str, actor: str,
           obj: str | None, at_ms: int, *, text: str | None = None, about: str | None = None,
           window_hours: int = 24, cap: int = 1_000) -> None:
    """Queue on ``tx`` the notification of ``recipient`` that ``actor`` did ``type_`` to ``obj``.

    Nothing for one's own action, nor for a type the recipient muted (muted types are not
    stored). Grouped types join the recipient's open group of the same type and object when
    it was opened less than ``window_hours`` before; the group then moves to the top and is
    unread again. Idempotent: the same ``notification_id`` and actor twice change nothing.
    At most ``cap`` notifications are kept, the least recently active dropped. One script in
    the recipient's slot (see ``store.NOTIFY`` for its replies).
    """
    if actor == recipient:
        return
    group = ""
    if type_ == "new_follower":
        group = type_
    elif type_ in GROUPED:
        group = f"{type_}|{obj}"
    # The footprint (the actor's slot) before the notification: erasing a closed actor finds it.
    tx.sadd(keys.acted_in(actor), recipient)
    keys.NOTIFY(None, keys=recipient_keys(recipient), pipe=tx, id=notification_id, type=type_, actor=actor,
                object=obj or "", text=text or "", about=about or "", at=at_ms, group=group,
                window=window_hours * 3600 * 1000, cap=cap, shown=SHOWN_ACTORS, live_cap=LIVE_CAP,
                bell=keys.live_bell(recipient))


def recipient_keys(recipient: str) -> dict[str, str]:
    """NOTIFY's keys for ``recipient``: their inbox's, all of their slot."""
    return {"inbox": keys.inbox(recipient), "unread": keys.unread(recipient), "notes": keys.notes(recipient),
            "actors": keys.actors(recipient), "groups": keys.groups(recipient), "muted": keys.muted(recipient),
            "live": keys.live(recipient), "by_actor": keys.by_actor(recipient), "notifiers": keys.notifiers(recipient)}


def load(store: redis.Redis, member: str, ids: list[str]) -> list[Notification]:
    """The notifications ``ids`` of ``member`` (missing ones left out), in the order given."""
    if not ids:
        return []
    with store.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.notes(member), ids)
        pipe.zmscore(keys.unread(member), ids)
        rows, unread = pipe.execute()
    items = []
    for raw, score in zip(rows, unread):
        if raw is None:
            continue  # dropped by the cap meanwhile
        row = json.loads(raw)
        items.append(Notification(
            id=row["id"], type=row["type"], actors=[actor for actor, _ in row["recent"]],
            actor_count=row["actor_count"], object=row.get("object") or None, text=row.get("text") or None,
            about=row.get("about") or None, created_at_ms=int(row.get("updated_at_ms") or row["created_at_ms"]),
            read=score is None))
    return items


def page(store: redis.Redis, member: str, limit: int, cursor: str | None,
         unread_only: bool = False) -> tuple[list[Notification], str | None]:
    """A page of ``member``'s notifications (only the unread ones with ``unread_only``), newest first."""
    key = keys.unread(member) if unread_only else keys.inbox(member)
    ids, next_cursor = zset_page(store, key, limit, cursor)
    return load(store, member, [nid for nid, _ in ids]), next_cursor


def unread_count(store: redis.Redis, member: str) -> int:
    """Constant time: the size of the unread set."""
    return store.zcard(keys.unread(member))


def mark_read(store: redis.Redis, member: str, notification_id: str) -> None:
    """Mark one of ``member``'s notifications read; NotFound when it is not theirs (or gone)."""
    if store.zscore(keys.inbox(member), notification_id) is None:
        raise NotFound("No such notification.", code="notification_not_found")
    store.zrem(keys.unread(member), notification_id)


def mark_all_read(store: redis.Redis, member: str) -> None:
    store.delete(keys.unread(member))


def muted_types(store: redis.Redis, member: str) -> list[str]:
    return sorted(store.smembers(keys.muted(member)))


def set_muted_types(store: redis.Redis, member: str, types: list[str]) -> list[str]:
    """Replace ``member``'s muted types. From now on notifications of those types are not stored."""
    with store.pipeline(transaction=True) as tx:
        tx.delete(keys.muted(member))
        if types:
            tx.sadd(keys.muted(member), *types)
        tx.execute()
    return sorted(set(types))
