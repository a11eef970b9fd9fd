"""The Lua convention on a real Redis: named keys and arguments, one slot, a server that forgot."""
from __future__ import annotations

import pytest

from shared import slots
from shared.lua import FAILED, LuaScript, with_marker
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


def test_scripts_run_by_sha_in_one_pipeline_run_again_by_their_text_after_the_server_forgot_them(
        settings, key):
    from shared.lua import run_by_sha

    store = connect(settings.store_url("connections"))
    if is_cluster(settings.store_url("connections")):
        store = node_of(store, key("c"))  # a cluster's own pipeline runs no script: the slot's node's
    calls = [(ADD, {"counter": key("c"), "others": []}, {"by": by, "names": []}) for by in (1, 2)]
    assert run_by_sha(store, calls) == [[1, 0], [3, 0]]
    store.script_flush()
    assert run_by_sha(store, calls) == [[4, 0], [6, 0]]


def test_a_script_queued_in_a_transaction_runs_at_exec(store, key):
    node = node_of(store, key("c"))  # a cluster's own pipeline runs no script: the slot's node's
    node.script_flush()
    pipe = node.pipeline(transaction=True)
    pipe.set(key("c"), 10)
    ADD(store, keys={"counter": key("c"), "others": []}, pipe=pipe, by=1, names=[])
    assert pipe.execute() == [True, [11, 0]]


RAISES_AFTER_A_WRITE = LuaScript("raises_after_a_write", keys=("counter",), args=("how",), source="""
redis.call('INCR', K.counter)
if A.how == 'raise' then error('cannot apply ' .. A.how) end
if A.how == 'reply' then return redis.error_reply('refused ' .. A.how) end
return #KEYS
""")


def run_with_marker(store, key, how: str):
    """RAISES_AFTER_A_WRITE given ``key("m")`` as its part's marker, in a MULTI/EXEC."""
    pipe = node_of(store, key("c")).pipeline(transaction=True)
    pipe.set(key("m"), "running", ex=60)
    keys, args = RAISES_AFTER_A_WRITE.pack({"counter": key("c")}, {"how": how})
    pipe.eval(with_marker(RAISES_AFTER_A_WRITE.source), 2, *keys, key("m"), *args)
    return pipe.execute(raise_on_error=False)[1]


@pytest.mark.parametrize("how", ["raise", "reply"])
def test_a_script_given_a_marker_that_fails_writes_failed_there_and_returns_its_error(store, key, how):
    reply = run_with_marker(store, key, how)
    assert isinstance(reply, Exception) and f"{how}" in str(reply)
    assert store.get(key("m")) == FAILED and store.ttl(key("m")) > 0
    assert store.get(key("c")) == "1"  # Redis rolls back nothing: the write before the error stays


def test_a_script_given_a_marker_that_succeeds_sees_only_its_own_keys_and_leaves_the_marker(store, key):
    assert run_with_marker(store, key, "ok") == 1
    assert store.get(key("m")) == "running"


def test_a_script_touching_two_slots_never_reaches_redis(store, unique):
    first, second = f"test:{{s1}}:{unique('c')}", f"test:{{s2}}:{unique('x')}"
    with pytest.raises(slots.CrossSlot):
        ADD(store, keys={"counter": first, "others": [second]}, by=1, names=["a"])
    assert store.exists(first, second) == 0


def test_a_cluster_url_names_its_nodes():
    url = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
    assert is_cluster(url) and not is_cluster("redis://127.0.0.1:6379/0")
    assert cluster_nodes(url) == [("127.0.0.1", 7000), ("127.0.0.1", 7001)]
