"""The follow setting: who may follow a member — ``everyone`` (default) or only their ``connections``.

Changing it never removes existing followers.
"""
from __future__ import annotations

import redis

from services.follows import store as keys
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event

CHOICES = ("everyone", "connections")
DEFAULT = "everyone"


def follow_setting(store: redis.Redis, member: str) -> str:
    return store.hget(keys.follow_setting(member), "followers") or DEFAULT


def change_follow_setting(store: redis.Redis, outbox: Outbox, member: str, followers: str) -> str:
    """Set who may follow ``member``; ``settings.updated`` is emitted only when it changes."""
    event = new_event("follows", "settings.updated",
                      {"member": member, "followers": followers, "at": rfc3339(now_ms())})
    keys.SET_FOLLOW_SETTING(store, keys={"setting": keys.follow_setting(member),
                                         "outbox": outbox.key_for(keys.member_tag(member))},
                            value=followers, event=outbox.xadd_args(event))
    return followers
