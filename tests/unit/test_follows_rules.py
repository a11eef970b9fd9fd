"""Follows rules that need no I/O: the ratio, the events a follow may emit, the keys."""
from __future__ import annotations

import json

from services.follows import store as keys
from services.follows.following import FollowStats, follow_args
from shared.bus.outbox import Outbox
from shared.settings import load_settings
from shared.slots import check_one_slot


def test_the_ratio_is_followers_over_following_and_null_without_followees():
    assert FollowStats(followers=3, following=2).ratio == 1.5
    assert FollowStats(followers=5, following=0).ratio is None
    assert FollowStats(followers=0, following=4).ratio == 0.0


def test_a_follow_prepares_its_created_event_and_an_update_only_when_alerts_are_chosen():
    outbox = Outbox("follows", load_settings(namespace="unit"))

    keep = follow_args(outbox, "ada", "grace", None, "connection", 1_700_000_000_000)
    switch_on = follow_args(outbox, "ada", "grace", True, "explicit", 1_700_000_000_000)

    assert (keep["follower"], keep["followee"], keep["now"], keep["notify"]) == ("ada", "grace", 1_700_000_000_000, "")
    assert keep["events"][6:] == [""] * 6
    created = json.loads(dict(zip(keep["events"][0:6:2], keep["events"][1:6:2]))["value"])
    assert created["data"] == {"follower": "ada", "followee": "grace", "reason": "connection",
                               "notify_on_post": False, "since": "2023-11-14T22:13:20.000Z",
                               "version": 0}  # the placeholder the FOLLOW script replaces
    assert switch_on["notify"] == "1"
    updated = json.loads(dict(zip(switch_on["events"][6::2], switch_on["events"][7::2]))["value"])
    assert updated["type"] == "rapport.follows.follow.updated.v1" and updated["data"]["notify_on_post"] is True


def test_a_members_keys_and_the_edges_they_follow_share_the_slot_of_the_members_shard():
    member_keys = [key("ada") for key in (keys.following, keys.followers, keys.followers_version, keys.alerts,
                                          keys.follow_setting, keys.connections, keys.blocks, keys.blocked_by)]
    member_keys += [keys.follow_version("ada", "grace"), keys.pair_version("ada", "grace")]
    assert all(key.startswith("follows:" + keys.member_tag("ada") + ":") for key in member_keys)
    check_one_slot(member_keys)
    assert keys.pair_version("ada", "grace") != keys.pair_version("grace", "ada")  # one for each side
