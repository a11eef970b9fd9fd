"""The cluster stack's settings and the worker copies of `rapport up --workers N` (no I/O)."""
from __future__ import annotations

from shared.settings import SERVICES, load_settings
from shared.stack import cluster, processes
from shared.store_client import cluster_nodes, is_cluster


def test_the_cluster_stack_serves_every_store_and_the_cache_from_its_redis_cluster():
    stack = cluster.settings_for(load_settings({}))
    nodes = [("127.0.0.1", p) for p in (17001, 17002, 17003, 17004, 17005, 17006)]
    assert {s: cluster_nodes(u) for s, u in stack.store_urls.items()} == {s: nodes for s in SERVICES}
    assert is_cluster(stack.cache_url) and cluster_nodes(stack.cache_url) == nodes
    assert stack.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"


def test_the_cluster_stack_keeps_clear_of_the_default_stacks_ports_and_run_folder():
    default = load_settings({"RAPPORT_RUN_DIR": "/srv/rapport"})
    stack = cluster.settings_for(default)
    assert stack.run_dir == default.run_dir / "cluster"
    assert stack.ports == {s: p + 100 for s, p in default.ports.items()}
    assert stack.gateway_port == default.gateway_port + 100
    assert stack.worker_metrics_ports == {s: p + 100 for s, p in default.worker_metrics_ports.items()}
    assert stack.base_urls["follows"] == f"http://localhost:{default.ports['follows'] + 100}"


def test_the_cluster_stack_ports_are_settings():
    stack = cluster.settings_for(load_settings({"RAPPORT_CLUSTER_KAFKA_PORTS": "1,3,5",
                                                "RAPPORT_CLUSTER_REDIS_PORTS": "7,8,9,10,11,12",
                                                "RAPPORT_CLUSTER_PORT_OFFSET": "1000"}))
    assert stack.kafka_bootstrap == "127.0.0.1:1,127.0.0.1:3,127.0.0.1:5"
    assert [p for _, p in cluster_nodes(stack.cache_url)] == [7, 8, 9, 10, 11, 12]
    assert stack.gateway_port == 9080


def test_on_the_cluster_stack_topics_have_three_replicas_and_writes_wait_for_one_replica():
    default, stack = load_settings({}), cluster.settings_for(load_settings({}))
    assert (default.topic_replication_factor, default.topic_min_insync_replicas, default.store_replicas_ack) == (1, 1, 0)
    assert (stack.topic_replication_factor, stack.topic_min_insync_replicas, stack.store_replicas_ack) == (3, 2, 1)


def test_the_cluster_stacks_processes_read_its_settings_from_their_environment():
    stack = cluster.settings_for(load_settings({}))
    env = cluster.child_env(stack)
    assert load_settings(env).replace(env="") == stack.replace(env="")  # env: the tests set it


def test_n_workers_per_service_are_the_worker_and_its_numbered_copies():
    table = processes.with_workers(3)
    for service in SERVICES:
        workers = [p for p in table if p.service == service and p.kind == "worker"]
        assert [p.name for p in workers] == [f"{service}-worker", f"{service}-worker-2", f"{service}-worker-3"]
        assert {p.argv for p in workers} == {("rapport", "worker", service)}
    assert processes.with_workers(1) == processes.PROCESSES


def test_only_the_first_worker_of_a_service_serves_metrics():
    settings = load_settings({})
    first, second = [p for p in processes.with_workers(2) if p.service == "feed" and p.kind == "worker"]
    assert "RAPPORT_FEED_WORKER_METRICS_PORT" not in processes.environment(first, settings, {})
    assert processes.environment(second, settings, {})["RAPPORT_FEED_WORKER_METRICS_PORT"] == "0"


def test_the_worker_copies_started_are_found_by_their_pid_files(tmp_path):
    (tmp_path / "pids").mkdir()
    for name in ("feed-worker", "feed-worker-2", "feed-worker-10", "follows-worker-3", "feed-api", "feed-worker-x"):
        (tmp_path / "pids" / f"{name}.pid").write_text("1\nx\n")
    assert processes.worker_copies_started(tmp_path) == ["feed-worker-2", "feed-worker-10", "follows-worker-3"]
