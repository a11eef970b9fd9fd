"""A closed account's erasure in the notifications service (on ``member.closed``, from the
member replica's consumer): its inbox (notifications, unread, notes, actors, groups, muted
types, live stream and open streams' registry), its replicas (post alerts, connections), and
its name among the actors of others' notifications.

Others' notifications have no index by actor: they are found by one SCAN of the actors sets
(closing an account is rare; an index would cost every notification). Each is then changed by
``ERASE_ACTOR`` in its owner's slot, which counts the actor off only while its entry is there,
so a retried ``member.closed`` changes nothing twice.
"""
from __future__ import annotations

from services.notifications import store as keys
from shared.bus.consumer import Effects


def _glob(text: str) -> str:
    """``text`` with the glob characters of a SCAN/ZSCAN pattern escaped."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def erase(member: str, fx: Effects) -> None:
    """Queue the erasure of everything the notifications store holds of ``member``."""
    store, tx = fx.store, fx.tx
    tag = keys.shard(member)
    own = keys.actors(member)
    for key in store.scan_iter(match="notifications:*:actors:*", count=1000):
        if key == own:
            continue
        owner = key.split(":", 3)[3]
        for entry, _ in store.zscan_iter(key, match="*|" + _glob(member), count=1000):
            notification_id = entry[: -len(member) - 1]
            keys.ERASE_ACTOR(tx, pipe=tx, keys={"inbox": keys.inbox(owner), "unread": keys.unread(owner),
                                                 "notes": keys.notes(owner), "actors": key,
                                                 "groups": keys.groups(owner)},
                             id=notification_id, actor=member)
    others = set(store.smembers(keys.connections(member))) | {
        k.rsplit("|", 1)[1] for k in store.scan_iter(match=f"notifications:{tag}:pair-version:{_glob(member)}|*")}
    authors = {k.rsplit(":", 1)[1].split("|")[0]
               for k in store.scan_iter(match=f"notifications:*:alert-version:*|{_glob(member)}", count=1000)}
    for other in others:
        tx.srem(keys.connections(other), member)
        tx.delete(keys.pair_version(other, member))
        tx.delete(keys.pair_version(member, other))
    for author in authors:
        tx.srem(keys.post_alerts(author), member)
        tx.delete(keys.alert_version(author, member))
    for key in store.scan_iter(match=f"notifications:{tag}:alert-version:{_glob(member)}|*"):
        tx.delete(key)
    tx.delete(keys.inbox(member), keys.unread(member), keys.notes(member), own, keys.groups(member),
              keys.muted(member), keys.live(member), keys.post_alerts(member), keys.connections(member))
    # The open streams' registry has its own hash tag (the member id itself).
    tx.delete(keys.live_streams(member))
    tx.delete(keys.live_beats(member))
