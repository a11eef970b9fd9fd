"""The notifications service's Lua scripts on a real Redis, one by one: what each does and replies.

Every key of a call is of one member's slot (the shared convention refuses any other call).
"""
from __future__ import annotations

import json

import pytest

from services.notifications import inbox
from services.notifications import store as keys
from shared import slots
from shared.store_client import connect

HOUR_MS = 3600 * 1000


@pytest.fixture
def store(settings):
    return connect(settings.store_url("notifications"))


def notify(store, member, nid, type_="post_liked", actor="ada", obj="post1", at=1_000, group=None, cap=10,
           text=""):
    group = f"{type_}|{obj}" if group is None else group
    return keys.NOTIFY(store, keys=inbox.recipient_keys(member), id=nid, type=type_, actor=actor, object=obj,
                       text=text, about="", at=at, group=group, window=24 * HOUR_MS, cap=cap, shown=2,
                       live_cap=50, bell=keys.live_bell(member))


def note(store, member, nid) -> dict:
    return json.loads(store.hget(keys.notes(member), nid))


def test_the_inbox_keys_of_a_member_share_one_slot(unique):
    grace = unique("grace")
    slots.check_one_slot(list(inbox.recipient_keys(grace).values()))
    assert all(key.startswith(f"notifications:{slots.tag(grace)}:") for key in inbox.recipient_keys(grace).values())


def test_notify_stores_a_new_notification_then_replies_duplicate(store, unique):
    grace = unique("grace")
    assert notify(store, grace, "n1") == "stored"
    assert notify(store, grace, "n1", group="") == "duplicate"
    assert store.zrange(keys.inbox(grace), 0, -1) == ["n1"] == store.zrange(keys.unread(grace), 0, -1)
    assert (note(store, grace, "n1")["actor_count"], note(store, grace, "n1")["recent"]) == (1, [["ada", 1000]])
    assert store.xlen(keys.live(grace)) == 1


def test_notify_grows_an_open_group_once_per_actor(store, unique):
    grace = unique("grace")
    notify(store, grace, "n1", actor="ada", at=1_000)
    store.zrem(keys.unread(grace), "n1")
    assert notify(store, grace, "n2", actor="bob", at=2_000) == "grown"
    assert notify(store, grace, "n3", actor="bob", at=3_000) == "unchanged"
    assert notify(store, grace, "n4", actor="cy", at=4_000) == "grown"
    grown = note(store, grace, "n1")
    assert grown["actor_count"] == 3 and grown["recent"] == [["cy", 4000], ["bob", 2000]]  # the newest 2 shown
    assert store.zrange(keys.inbox(grace), 0, -1, withscores=True) == [("n1", 4000)]
    assert store.zscore(keys.unread(grace), "n1") == 4000  # grown: unread again
    assert store.xlen(keys.live(grace)) == 3


def test_notify_opens_a_new_group_after_the_window(store, unique):
    grace = unique("grace")
    notify(store, grace, "n1", at=1_000)
    assert notify(store, grace, "n2", actor="bob", at=1_000 + 25 * HOUR_MS) == "stored"
    assert store.hget(keys.groups(grace), "post_liked|post1").startswith("n2|")


def test_notify_of_a_muted_type_replies_muted_and_stores_nothing(store, unique):
    grace = unique("grace")
    store.sadd(keys.muted(grace), "post_liked")
    assert notify(store, grace, "n1") == "muted"
    assert store.exists(keys.inbox(grace), keys.notes(grace), keys.live(grace)) == 0


def test_notify_keeps_the_cap_and_replies_dropped_for_what_is_older_than_all_it_keeps(store, unique):
    grace = unique("grace")
    for i in range(3):
        assert notify(store, grace, f"n{i}", obj=f"post{i}", at=1_000 + i, cap=2) == "stored"
    assert store.zrange(keys.inbox(grace), 0, -1) == ["n1", "n2"]
    assert store.hexists(keys.notes(grace), "n0") is False
    assert store.hget(keys.groups(grace), "post_liked|post0") is None
    assert [a for a in store.zrange(keys.actors(grace), 0, -1) if a.startswith("n0|")] == []
    assert notify(store, grace, "old", obj="post9", at=5, cap=2) == "dropped"
    assert store.zrange(keys.inbox(grace), 0, -1) == ["n1", "n2"]


def test_notify_cleans_only_the_dropped_notifications_actors(store, unique):
    grace = unique("grace")
    notify(store, grace, "n1", obj="a", at=1, cap=1)
    notify(store, grace, "n10", obj="b", at=2, cap=1)  # an id that n1 begins
    assert store.zrange(keys.actors(grace), 0, -1) == ["n10|ada"]


def side(store, member, other, present, version):
    return keys.SET_SIDE(store, keys={"set": keys.connections(member), "version": keys.pair_version(member, other),
                                      "seen": keys.paired(member)},
                         member=other, present="1" if present else "0", version=version)


def test_set_side_applies_a_newer_version_only(store, unique):
    ada, grace = unique("ada"), unique("grace")
    assert side(store, ada, grace, True, 2) == "applied"
    assert side(store, ada, grace, True, 2) == "current"
    assert side(store, ada, grace, False, 1) == "stale"
    assert store.sismember(keys.connections(ada), grace)
    assert side(store, ada, grace, False, 3) == "applied"
    assert not store.sismember(keys.connections(ada), grace)
