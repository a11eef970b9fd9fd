"""The cluster stack, ``rapport up --cluster``: the tests' own, on its own ports and run folder
(``tests/support/cluster_stack.py``)."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from shared import store_client
from shared.bus.topics import all_topics
from shared.slots import shard_tag, slot
from shared.stack import cluster, processes
from tests.support.cluster_stack import KAFKA_PORTS, REDIS_PORTS, rapport
from tests.support.infra import eventually


@pytest.fixture(scope="module")
def stack(own_cluster_stack):
    return own_cluster_stack


def _nodes(port: int) -> list[dict]:
    lines = subprocess.run(["redis-cli", "-p", str(port), "cluster", "nodes"], capture_output=True, text=True,
                           timeout=10).stdout.splitlines()
    nodes = []
    for line in lines:
        fields = line.split()
        nodes.append({"id": fields[0], "port": int(fields[1].split("@")[0].rsplit(":", 1)[1]),
                      "flags": fields[2].split(","), "primary": fields[3], "slots": fields[8:]})
    return nodes


def _live_nodes(port: int) -> list[dict]:
    return [n for n in _nodes(port) if "fail" not in n["flags"] and "fail?" not in n["flags"]]


def test_the_six_redis_nodes_form_one_cluster_of_three_primaries_each_with_a_replica(stack):
    nodes = _nodes(REDIS_PORTS[0])
    primaries = [n for n in nodes if "master" in n["flags"]]
    replicas = [n for n in nodes if "slave" in n["flags"]]
    assert sorted(n["port"] for n in nodes) == sorted(REDIS_PORTS)
    assert len(primaries) == 3 and all(n["slots"] for n in primaries)
    assert sorted(r["primary"] for r in replicas) == sorted(p["id"] for p in primaries)


def test_a_key_in_every_primarys_slots_is_written_and_read_through_connect(stack):
    _, settings = stack
    client = store_client.connect(settings.store_url("follows"))
    tags = {}
    for i in range(settings.shards):
        tags.setdefault(client.nodes_manager.get_node_from_slot(slot(shard_tag(i))).name, shard_tag(i))
    assert len(tags) == 3, "the shard tags cover every primary"
    for node, tag in tags.items():
        client.set(f"test:{tag}:probe", node)
    assert {node: client.get(f"test:{tag}:probe") for node, tag in tags.items()} == {n: n for n in tags}


def test_a_client_with_a_bounded_pool_reaches_every_primary(stack):
    _, settings = stack
    client = store_client.connect(settings.store_url("notifications"), pool_size=2, pool_timeout=5)
    for i in range(settings.shards):
        client.set(f"test:{shard_tag(i)}:pooled", i)
    assert [int(client.get(f"test:{shard_tag(i)}:pooled")) for i in range(settings.shards)] == list(range(settings.shards))


def test_a_message_published_on_one_node_reaches_a_subscriber_on_another(stack):
    _, settings = stack
    client = store_client.connect(settings.store_url("notifications"))
    here, there = client.get_primaries()[:2]
    subscriber = client.pubsub(node=here, ignore_subscribe_messages=True)
    subscriber.subscribe("test:bell")
    publisher = client.get_redis_connection(there)

    def rung():  # the count PUBLISH answers is of the publishing node's subscribers: ask the subscriber
        publisher.publish("test:bell", "ring")
        return subscriber.get_message(timeout=0.3)

    got = eventually(rung, timeout=10, message="the message")

    assert (got["channel"], got["data"]) == ("test:bell", "ring")
    assert here.name != there.name
    subscriber.close()


def test_every_topic_has_three_replicas_on_three_brokers_and_needs_two_in_sync(stack):
    _, settings = stack
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        assert len(admin.describe_cluster()["brokers"]) == 3
        topics = admin.describe_topics(all_topics(settings))
        assert {t["name"] for t in topics} == set(all_topics(settings))
        assert all(len(p["replica_nodes"]) == 3 for t in topics for p in t["partitions"])
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in all_topics(settings)])
        assert {t: c["min.insync.replicas"]["value"] for t, c in configs["topic"].items()} == \
            {t: "2" for t in all_topics(settings)}
    finally:
        admin.close()


def test_a_write_acknowledged_by_a_replica_survives_killing_its_primary(stack):
    _, settings = stack
    client = store_client.connect(settings.store_url("feed"))
    key = f"feed:{shard_tag(7)}:survivor"
    client.set(key, "kept")
    store_client.wait_replicated(client, 1, 2000, "test")
    node = client.nodes_manager.get_node_from_slot(slot(key))
    pid = int(client.get_redis_connection(node).info("server")["process_id"])
    os.kill(pid, signal.SIGKILL)
    began = time.monotonic()

    def promoted():
        survivor = next(p for p in REDIS_PORTS if p != node.port)
        live = _live_nodes(survivor)
        owner = [n for n in live if "master" in n["flags"] and n["port"] != node.port and n["slots"]]
        info = cluster.cluster_info(survivor)
        return len(owner) == 3 and info.get("cluster_state") == "ok"

    eventually(promoted, timeout=30, interval=0.2, message="the replica takes over")
    failover_seconds = time.monotonic() - began
    fresh = store_client.connect(settings.store_url("feed"))
    assert fresh.get(key) == "kept"
    assert fresh.nodes_manager.get_node_from_slot(slot(key)).port != node.port
    print(f"failover took {failover_seconds:.1f}s")


def test_rapport_down_stops_every_process_of_the_cluster_stack(stack):
    env, settings = stack
    pids = [processes.running_pid(settings.run_dir, f.stem) for f in (settings.run_dir / "pids").glob("*.pid")]
    assert len([p for p in pids if p]) >= 8  # three brokers and the Redis nodes still alive

    stopped = rapport(env, "down")

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not [p for p in pids if p and not processes.exited(p)]
    assert not [p for p in (*KAFKA_PORTS, *REDIS_PORTS) if processes.port_in_use("127.0.0.1", p)]
