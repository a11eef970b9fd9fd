"""A consumer's writes are grouped by hash slot before they reach Redis (no I/O here: the
commands are only queued)."""
from __future__ import annotations

import pytest
import redis

from shared.bus.transactions import SlotTransactions, command_keys, hash_tag
from shared.lua import LuaScript
from shared.slots import CrossSlot, slot

SCRIPT = LuaScript("test_add", keys=("members",), args=("member",), source="return redis.call('SADD', K.members, A.member)")


@pytest.fixture
def tx():
    return SlotTransactions(redis.Redis())  # never connects: nothing is executed


def test_a_commands_keys_are_its_first_argument_a_scripts_its_declared_keys_and_dels_all():
    assert command_keys(("SADD", "a:{s1}", "x", "y")) == ["a:{s1}"]
    assert command_keys(("EVAL", "return 1", 2, "k1", "k2", "arg")) == ["k1", "k2"]
    assert command_keys(("DEL", "k1", "k2")) == ["k1", "k2"]


def test_a_hash_tag_is_the_braced_part_redis_hashes_or_the_whole_key():
    assert hash_tag("follows:{s17}:following:ada") == "{s17}"
    assert hash_tag("outbox:feed") == "{outbox:feed}"
    assert hash_tag("odd:{}:{s2}") == "{odd:{}:{s2}}"  # an empty tag: Redis hashes the whole key
    for key in ("follows:{s17}:following:ada", "outbox:feed"):
        assert slot(f"dedup:g:{hash_tag(key)}:e") == slot(key)


def test_commands_are_queued_by_the_slot_of_their_keys(tx):
    tx.sadd("a:{s1}", "x")
    tx.incr("b:{s1}")
    SCRIPT(None, keys={"members": "c:{s2}"}, member="y", pipe=tx)
    parts = tx.take().parts
    assert sorted(parts) == sorted([slot("{s1}"), slot("{s2}")])
    assert [args[0] for args, _ in parts[slot("{s1}")].commands] == ["SADD", "INCRBY"]
    assert parts[slot("{s2}")].tag == "{s2}"
    assert tx.take().parts == {}


def test_a_command_over_two_slots_is_refused_while_queuing_when_strict():
    with pytest.raises(CrossSlot):
        SlotTransactions(redis.Redis(), strict=True).delete("a:{s1}", "b:{s2}")


def test_on_a_single_node_a_command_over_two_slots_is_queued_in_its_first_keys_slot_by_default(tx):
    tx.delete("a:{s1}", "b:{s2}")
    assert list(tx.take().parts) == [slot("{s1}")]


def test_a_shards_transaction_refuses_a_key_of_another_slot(tx):
    tx.shard("{s1}").sadd("a:{s1}", "x")
    with pytest.raises(CrossSlot):
        tx.shard("{s1}").sadd("a:{s2}", "x")
    assert list(tx.take().parts) == [slot("{s1}")]


def test_a_handler_cannot_execute_the_runners_transaction(tx):
    with pytest.raises(TypeError):
        tx.execute()


def test_what_a_handler_queued_is_given_back_in_its_order_across_slots(tx):
    tx.set("a:{s1}", 1)
    tx.set("b:{s2}", 2)
    tx.set("c:{s1}", 3)
    assert [args[1] for _, (args, _) in tx.take().in_order()] == ["a:{s1}", "b:{s2}", "c:{s1}"]
