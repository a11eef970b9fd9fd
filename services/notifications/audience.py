"""Who hears about a new post: the notifications service's replicas of post alerts and connections.

Both are built from the other services' events (never read from their stores). Each change
carries its aggregate's version (a follow edge's, a member pair's), numbered by the producing
store with the change. Each member's side (an author's post alerts, each member's
connections) is applied by one script in that member's slot, only when the version is newer
than the one kept beside it, so a stale or repeated event changes nothing whatever the times
the producers stamped. The check is in the script, at EXEC: events batched in one
transaction see the versions the events before them wrote.
"""
from __future__ import annotations

import redis

from services.notifications import store as keys


def _side(tx: redis.client.Pipeline, set_key: str, version_key: str, seen_key: str, member: str, present: bool,
          version: int) -> None:
    keys.SET_SIDE(None, keys={"set": set_key, "version": version_key, "seen": seen_key}, pipe=tx, member=member,
                  present="1" if present else "0", version=version)


def set_post_alerts(tx: redis.client.Pipeline, follower: str, author: str, on: bool, version: int) -> None:
    """Queue, unless stale: ``follower`` does (or no longer does) want an alert for each post of
    ``author``. The author's side of the edge, in the author's slot (whose posts it alerts of)."""
    tx.sadd(keys.alerts_to(follower), author)  # the footprint (follower's slot), before the version
    _side(tx, keys.post_alerts(author), keys.alert_version(author, follower), keys.alert_seen(author), follower, on,
          version)


def connect(tx: redis.client.Pipeline, a: str, b: str, version: int) -> None:
    """Queue each member's side of a new connection, each in its member's slot, unless stale."""
    for member, other in ((a, b), (b, a)):
        _side(tx, keys.connections(member), keys.pair_version(member, other), keys.paired(member), other, True,
              version)


def disconnect(tx: redis.client.Pipeline, a: str, b: str, version: int) -> None:
    for member, other in ((a, b), (b, a)):
        _side(tx, keys.connections(member), keys.pair_version(member, other), keys.paired(member), other, False,
              version)


def post_audience(store: redis.Redis, author: str, visibility: str,
                  disconnected: list[dict] = ()) -> set[str]:
    """Members to alert of ``author``'s new post: followers with alerts on, and for a
    connections-only post only those who are also connections, as of the post.

    ``disconnected`` is what the feed knew when it stored the post: the members whose
    connection with the author had ended, with the pair's version. The feed.events and
    connections.events topics race, so this replica may not have applied that end yet: a
    member it names is left out unless this replica holds a newer version of the pair (a
    connection made again since)."""
    if visibility != "connections":
        return store.smembers(keys.post_alerts(author))
    members = store.sinter(keys.post_alerts(author), keys.connections(author))
    ended = {d["member"]: d["version"] for d in disconnected if d["member"] in members}
    if ended:
        with store.pipeline(transaction=False) as pipe:
            for member in ended:
                pipe.get(keys.pair_version(author, member))
            held = pipe.execute()
        for (member, version), mine in zip(ended.items(), held):
            if mine is None or int(mine) <= version:
                members.discard(member)
    return members
