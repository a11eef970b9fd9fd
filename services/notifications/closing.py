"""A closed account's erasure in the notifications service (on ``member.closed``, from the
member replica's consumer): its inbox (notifications, unread, notes, actors, groups, muted
types, live stream and open streams' registry), its replicas (post alerts, connections), and
its name among the actors of others' notifications.

No SCAN: what names the member in other members' slots is found from footprint sets in its
own slot, so erasure costs in proportion to what the member touched, not to the store:

- ``acted_in`` (the owners whose inbox may name the member as an actor), added by the inbox
  consumer on the actor's slot's transaction with each notification. Each owner's
  ``by_actor`` (kept by NOTIFY and ERASE_ACTOR with ``actors``, in the owner's slot) gives
  the member's notification ids there as one lex range;
- ``notifiers`` (every actor the member's own inbox ever had, added by NOTIFY), whose
  ``acted_in`` sets name the member as an owner;
- ``alerts_to`` (authors whose post alerts' versions name the member, added by the consumer
  with the version), ``alert_seen`` and ``paired`` (whom the member's own version keys name,
  added by SET_SIDE in the same script as the version).

The consumer's writes are redone on a redelivery, so a footprint entry is there before, or
with, its record once the event is processed; an entry whose record is gone (a notification
dropped by the cap) costs one command that changes nothing. Each notification is changed by
``ERASE_ACTOR`` in its owner's slot, which counts the actor off only while its entry is there,
so a retried ``member.closed`` changes nothing twice.
"""
from __future__ import annotations

from services.notifications import store as keys
from shared.bus.consumer import Effects


def erase(member: str, fx: Effects) -> None:
    """Queue the erasure of everything the notifications store holds of ``member``."""
    store, tx = fx.store, fx.tx
    for owner in store.smembers(keys.acted_in(member)):
        if owner == member:
            continue
        tx.srem(keys.notifiers(owner), member)
        # '<member>|<id>' entries: '}' follows '|', so the range is exactly this actor's.
        for entry in store.zrangebylex(keys.by_actor(owner), f"[{member}|", f"({member}}}"):
            keys.ERASE_ACTOR(tx, pipe=tx, keys={"inbox": keys.inbox(owner), "unread": keys.unread(owner),
                                                 "notes": keys.notes(owner), "actors": keys.actors(owner),
                                                 "groups": keys.groups(owner), "by_actor": keys.by_actor(owner)},
                             id=entry[len(member) + 1:], actor=member)
    for actor in store.smembers(keys.notifiers(member)):
        tx.srem(keys.acted_in(actor), member)
    for other in set(store.smembers(keys.connections(member))) | store.smembers(keys.paired(member)):
        tx.srem(keys.connections(other), member)
        tx.srem(keys.paired(other), member)
        tx.delete(keys.pair_version(other, member))
        tx.delete(keys.pair_version(member, other))
    for author in store.smembers(keys.alerts_to(member)):
        tx.srem(keys.post_alerts(author), member)
        tx.srem(keys.alert_seen(author), member)
        tx.delete(keys.alert_version(author, member))
    for follower in set(store.smembers(keys.post_alerts(member))) | store.smembers(keys.alert_seen(member)):
        tx.srem(keys.alerts_to(follower), member)
        tx.delete(keys.alert_version(member, follower))
    tx.delete(keys.inbox(member), keys.unread(member), keys.notes(member), keys.actors(member), keys.groups(member),
              keys.muted(member), keys.live(member), keys.post_alerts(member), keys.connections(member),
              keys.by_actor(member), keys.notifiers(member), keys.acted_in(member), keys.alerts_to(member),
              keys.alert_seen(member), keys.paired(member))
    # The open streams' registry has its own hash tag (the member id itself).
    tx.delete(keys.live_streams(member))
    tx.delete(keys.live_beats(member))
