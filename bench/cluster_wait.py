"""What waiting for a replica costs a write: the latency ``WAIT`` adds (``store_replicas_ack=1``).

A write as the services make one (a MULTI/EXEC of a state change and its outbox entry, both in
one shard) is timed on the single-node store (no replica: what the default stack does), then on
the cluster stack's Redis Cluster without and with ``shared.store_client.wait_replicated`` (the
call the HTTP layer makes after every write request: a mark and WAIT on each primary).

Needs the default stack's Redis (``rapport up --infra-only``); the cluster stack's Kafka and
Redis are used when they run (``rapport up --cluster --infra-only``), else started for the run
and stopped after it. Figures in ``bench/results/cluster_wait.json``.

    .venv/bin/python -m bench.cluster_wait [--writes 2000]
"""
from __future__ import annotations

import argparse
import time
import uuid

from bench.support import BENCH_STORE_DB, drop_namespaces, percentiles, write_results
from shared import store_client
from shared.settings import load_settings
from shared.slots import tag
from shared.stack import cluster, runner


def _write(client, member: str, n: int) -> None:
    shard = tag(member)
    with client.pipeline(transaction=True) as tx:
        tx.hset(f"bench:{shard}:member:{member}", "n", n)
        tx.xadd(f"bench:{shard}:outbox", {"event": str(n)}, maxlen=1000, approximate=True)
        tx.execute()


def measure(client, writes: int, replicas: int) -> dict:
    samples = []
    run = uuid.uuid4().hex[:6]
    for n in range(writes):
        member = f"m{n % 500}-{run}"
        started = time.perf_counter()
        _write(client, member, n)
        if replicas:
            store_client.wait_replicated(client, replicas, 1000, "bench")
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def forget(client) -> None:
    """Delete the keys ``measure`` wrote, on every primary."""
    for node, _ in store_client.primaries(client, "bench"):
        for key in node.scan_iter("bench:*", count=1000):
            node.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=2000)
    args = parser.parse_args()
    settings = load_settings()
    single = store_client.connect(f"redis://127.0.0.1:{settings.store_port}/{BENCH_STORE_DB['follows']}")
    started_here = not cluster.anything_started(settings)
    if started_here:
        runner.up(settings, infra_only=True, cluster=True)
    try:
        run(settings, single, args.writes)
    finally:
        if started_here:
            drop_namespaces()  # while the stack it started still answers
            cluster.down(settings)


def run(settings, single, writes: int) -> None:
    on_cluster = store_client.connect(cluster.settings_for(settings).store_url("follows"))
    primaries = len(on_cluster.get_primaries())
    for client in (single, on_cluster):  # warm the connections and the cluster's slot table
        measure(client, 50, 0)
    figures = {
        "writes": writes,
        "what": "one MULTI/EXEC (HSET + XADD in one shard) per write; wait = shared.store_client.wait_replicated",
        "cluster_primaries": primaries,
        "single_node": measure(single, writes, 0),
        "cluster_no_wait": measure(on_cluster, writes, 0),
        "cluster_wait_1_replica": measure(on_cluster, writes, 1),
    }
    figures["wait_adds_p50_ms"] = round(figures["cluster_wait_1_replica"]["p50_ms"]
                                        - figures["cluster_no_wait"]["p50_ms"], 3)
    figures["wait_adds_p99_ms"] = round(figures["cluster_wait_1_replica"]["p99_ms"]
                                        - figures["cluster_no_wait"]["p99_ms"], 3)
    for client in (single, on_cluster):
        forget(client)
    write_results("cluster_wait", figures)


if __name__ == "__main__":
    main()
