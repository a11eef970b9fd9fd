"""Shard tags and the Lua convention, without a server."""
from __future__ import annotations

import pytest

from shared import slots
from shared.lua import LuaScript


def test_a_shard_tag_is_stable_and_within_the_shard_count():
    assert slots.tag("ada") == slots.tag("ada")
    assert {slots.shard_of(f"m{i}", 8) for i in range(1000)} == set(range(8))


def test_keys_with_one_shard_tag_share_a_slot():
    t = slots.tag("ada")
    assert slots.slot(f"member:{t}:ada:connections") == slots.slot(f"outbox:connections:{t}")


def test_a_pair_is_the_same_whichever_member_comes_first():
    assert slots.pair("bob", "ada") == slots.pair("ada", "bob") == "ada|bob"


def test_keys_of_two_slots_are_refused_by_name():
    with pytest.raises(slots.CrossSlot, match="'a:{s1}' and 'b:{s2}'"):
        slots.check_one_slot(["a:{s1}", "a:{s1}:x", "b:{s2}"])


def test_keys_of_two_tags_in_one_slot_pass_and_the_hashed_part_follows_redis_rules():
    # Two different tags may hash to one slot: the check compares slots, not only tags.
    first = "{s1}"
    other = next(f"{{t{i}}}" for i in range(100_000) if slots.slot(f"{{t{i}}}") == slots.slot(first))
    slots.check_one_slot([f"a:{first}", f"b:{other}", f"c:{first}:x"])
    assert slots.hashed_part("a:{s1}:b") == "s1"
    assert slots.hashed_part("a:{}:{s1}") == "a:{}:{s1}"  # an empty tag: the whole key is hashed
    assert slots.hashed_part("plain") == "plain"
    with pytest.raises(slots.CrossSlot):
        slots.check_one_slot(["plain", "other"])


def test_a_script_binds_keys_and_arguments_by_name_in_its_prelude():
    script = LuaScript("demo", keys=("post", "*timelines"), args=("score", "*items"), source="return 1")
    assert script.source.startswith("local K = {post = KEYS[1], timelines = {unpack(KEYS, 2)}}\n"
                                    "local A = {score = ARGV[1], items = {unpack(ARGV, 2)}}\n")
    assert script.pack({"post": "p", "timelines": ["t1", "t2"]}, {"score": 3, "items": ["a"]}) == \
        (["p", "t1", "t2"], [3, "a"])


def test_a_script_refuses_a_missing_or_unknown_name():
    script = LuaScript("demo", keys=("post",), args=("score",), source="return 1")
    with pytest.raises(TypeError, match=r"missing arguments \['score'\], unknown arguments \['scor'\]"):
        script.pack({"post": "p"}, {"scor": 1})


def test_only_the_last_name_may_take_the_rest():
    with pytest.raises(ValueError, match="only the last name"):
        LuaScript("demo", keys=("*a", "b"), source="return 1")
