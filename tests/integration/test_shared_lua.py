"""The Lua convention on a real Redis: named keys and arguments, one slot, a server that forgot."""
from __future__ import annotations

import pytest

from shared import slots
from shared.lua import LuaScript
from shared.store_client import cluster_nodes, connect, is_cluster
from shared.bus.transactions import node_of

ADD = LuaScript("add", keys=("counter", "*others"), args=("by", "*names"), source="""
local total = redis.call('INCRBY', K.counter, A.by)
for i, key in ipairs(K.others) do redis.call('SET', key, A.names[i]) end
return {total, #K.others}
""")


@pytest.fixture
def store(settings):
    return connect(settings.store_url("connections"))


@pytest.fixture
def key(unique):
    """``key("c")`` → a key of this test alone, in the shard of member ada."""
    return lambda name: f"test:{slots.tag('ada')}:{unique(name)}"


def test_a_script_runs_with_keys_and_arguments_by_name(store, key):
    assert ADD(store, keys={"counter": key("c"), "others": [key("x"), key("y")]}, by=5, names=["a", "b"]) == [5, 2]
    assert store.mget(key("x"), key("y")) == ["a", "b"]


def test_a_script_runs_again_after_the_server_forgot_it(store, key):
    ADD(store, keys={"counter": key("c"), "others": []}, by=1, names=[])
    store.script_flush()
    assert ADD(store, keys={"counter": key("c"), "others": []}, by=1, names=[]) == [2, 0]


def test_a_script_queued_in_a_transaction_runs_at_exec(store, key):
    node = node_of(store, key("c"))  # a cluster's own pipeline runs no script: the slot's node's
    node.script_flush()
    pipe = node.pipeline(transaction=True)
    pipe.set(key("c"), 10)
    ADD(store, keys={"counter": key("c"), "others": []}, pipe=pipe, by=1, names=[])
    assert pipe.execute() == [True, [11, 0]]


def test_a_script_touching_two_slots_never_reaches_redis(store, unique):
    first, second = f"test:{{s1}}:{unique('c')}", f"test:{{s2}}:{unique('x')}"
    with pytest.raises(slots.CrossSlot):
        ADD(store, keys={"counter": first, "others": [second]}, by=1, names=["a"])
    assert store.exists(first, second) == 0


def test_a_cluster_url_names_its_nodes():
    url = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
    assert is_cluster(url) and not is_cluster("redis://127.0.0.1:6379/0")
    assert cluster_nodes(url) == [("127.0.0.1", 7000), ("127.0.0.1", 7001)]
