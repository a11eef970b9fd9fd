"""Fan-out to a Redis Cluster without a server: a batch's timelines go one pipeline per node,
one script call per slot."""
from __future__ import annotations

from services.feed import store as keys
from services.feed.timelines import SCRIPT_BATCH, Timelines, by_node
from shared import slots
from shared.settings import Settings


class FakePipeline:
    def __init__(self, node: FakeNode):
        self.node = node
        self.calls: list[list[str]] = []

    def evalsha(self, sha, numkeys, *keys_and_args):
        self.calls.append(list(keys_and_args[:numkeys]))
        return self

    def execute(self, raise_on_error=True):
        self.node.pipelines.append(self.calls)
        return [len(call) for call in self.calls]  # every timeline live


class FakeNode:
    """A node as redis-py's cluster client names it, with the client to it."""

    def __init__(self, name: str):
        self.name = name
        self.pipelines: list[list[list[str]]] = []
        self.redis_connection = self

    def pipeline(self, transaction=True):
        assert transaction is False, "a fan-out is not a transaction"
        return FakePipeline(self)


class FakeCluster:
    """Three nodes taking a third of the 16,384 slots each, as a three-primary cluster does."""

    def __init__(self):
        self.nodes = [FakeNode(f"node{i}") for i in range(3)]

    def get_node_from_key(self, key: str):
        return self.nodes[slots.slot(key) * 3 // 16384]


def members(n: int) -> list[str]:
    return [f"member{i}" for i in range(n)]


def test_a_batch_is_grouped_by_node_then_slot():
    cluster = FakeCluster()
    timeline_keys = [keys.timeline(m) for m in members(600)]
    groups = by_node(cluster, members(600))
    assert set(groups) == set(cluster.nodes)
    for node, per_shard in groups.items():
        for grouped in per_shard.values():
            assert all(cluster.get_node_from_key(k) is node for k in grouped)
            slots.check_one_slot(grouped)
    assert sorted(k for per_slot in groups.values() for grouped in per_slot.values() for k in grouped) \
        == sorted(timeline_keys)


def test_fan_out_to_a_cluster_sends_one_pipeline_per_node_with_one_call_per_slot():
    cluster = FakeCluster()
    audience = members(1500)  # one batch
    assert Timelines(cluster, Settings()).fan_out(audience, [("ada~k1", 1)]) == len(audience)
    for node in cluster.nodes:
        assert len(node.pipelines) == 1
        calls = node.pipelines[0]
        assert all(len({slots.slot(k) for k in call}) == 1 for call in calls)
        assert len({slots.slot(call[0]) for call in calls}) == len(calls)  # one call per slot
        assert all(cluster.get_node_from_key(k) is node for call in calls for k in call)
    sent = sorted(k for node in cluster.nodes for call in node.pipelines[0] for k in call)
    assert sent == sorted(keys.timeline(m) for m in audience)


def test_fan_out_to_a_cluster_sends_one_pipeline_per_node_for_each_batch():
    cluster = FakeCluster()
    Timelines(cluster, Settings()).fan_out(members(2 * SCRIPT_BATCH), [("ada~k1", 1)])
    assert [len(node.pipelines) for node in cluster.nodes] == [2, 2, 2]


def test_fan_out_to_one_node_sends_one_pipeline_per_batch_with_one_call_per_slot():
    node = FakeNode("single")  # no get_node_from_key: one Redis node
    Timelines(node, Settings()).fan_out(members(2 * SCRIPT_BATCH), [("ada~k1", 1)])
    assert len(node.pipelines) == 2
    for calls in node.pipelines:
        assert len({slots.slot(call[0]) for call in calls}) == len(calls) == slots.DEFAULT_SHARDS
