"""Each script of the follows store, run directly on the real Redis: its reply codes, each in
one member's slot (the follower's for the edge, the followee's for their followers)."""
from __future__ import annotations

import json

import pytest

from services.follows import store as keys
from shared.store_client import connect

NOW = 1_700_000_000_000


def event() -> list[str]:
    return ["topic", "t", "key", "k", "value", json.dumps({"data": {"version": 0}}, separators=(",", ":"))]


@pytest.fixture
def store(settings):
    return connect(settings.store_url("follows"))


@pytest.fixture
def members(unique):
    return unique("ada"), unique("grace")


def outbox(member: str) -> str:
    return f"test:{keys.member_tag(member)}:outbox"


def follow(store, a, b, notify="", restricted="0"):
    return keys.FOLLOW(store, keys={
        "following": keys.following(a), "alerts": keys.alerts(a), "blocks": keys.blocks(a),
        "blocked_by": keys.blocked_by(a), "connections": keys.connections(a), "outbox": outbox(a),
        "version": keys.follow_version(a, b), "followed": keys.followed(a),
    }, follower=a, followee=b, now=NOW, notify=notify, restricted=restricted, events=[*event(), *event()])


def unfollow(store, a, b):
    return keys.UNFOLLOW(store, keys={"following": keys.following(a), "alerts": keys.alerts(a), "outbox": outbox(a),
                                      "version": keys.follow_version(a, b), "followed": keys.followed(a)},
                         follower=a, followee=b, event=event())


def test_follow_creates_updates_and_keeps_an_edge_each_with_its_version(store, members):
    ada, grace = members
    assert follow(store, ada, grace) == ["created", str(NOW), 0, 1]
    assert follow(store, ada, grace) == ["existing", str(NOW), 0, 0]
    assert follow(store, ada, grace, notify="1") == ["updated", str(NOW), 1, 2]
    assert json.loads(store.xrange(outbox(ada))[-1][1]["value"])["data"]["version"] == 2
    assert unfollow(store, ada, grace) == 3
    assert unfollow(store, ada, grace) == 0
    assert store.get(keys.follow_version(ada, grace)) == "3"


@pytest.mark.parametrize("side", ["blocks", "blocked_by"])
def test_follow_is_refused_across_a_block_either_way(store, members, side):
    ada, grace = members
    store.sadd(keys.blocks(ada) if side == "blocks" else keys.blocked_by(ada), grace)
    assert follow(store, ada, grace) == ["refused", "", 0, 0]
    assert not store.exists(keys.following(ada))


def test_follow_of_a_member_for_connections_only_needs_the_connection(store, members):
    ada, grace = members
    assert follow(store, ada, grace, restricted="1") == ["restricted", "", 0, 0]
    store.sadd(keys.connections(ada), grace)
    assert follow(store, ada, grace, restricted="1")[0] == "created"


def test_project_follower_applies_only_a_newer_version_of_the_edge(store, members):
    ada, grace = members

    def project(version, since):
        return keys.PROJECT_FOLLOWER(store, keys={"followers": keys.followers(grace),
                                                  "versions": keys.followers_version(grace)},
                                     follower=ada, version=version, since=since)
    assert project(2, NOW) == 1
    assert project(1, "") == 0  # an older removal arriving late
    assert store.zscore(keys.followers(grace), ada) == NOW
    assert project(3, "") == 1
    assert store.zcard(keys.followers(grace)) == 0


def test_set_follow_setting_emits_only_on_a_change(store, members):
    ada, _ = members

    def set_to(value):
        return keys.SET_FOLLOW_SETTING(store, keys={"setting": keys.follow_setting(ada), "outbox": outbox(ada)},
                                       value=value, event=event())
    assert set_to("everyone") == 0
    assert set_to("connections") == 1
    assert set_to("connections") == 0
