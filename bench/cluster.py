"""The cluster stack beside the single node, in one run: what spreading every store and the
cache over a Redis Cluster (three primaries, one replica each, writes answered after ``WAIT``)
and Kafka over three brokers (replication factor 3) costs or gains.

For each stack, one after the other on the same machine:

- fan-out: a post by an author with 100,000 followers, spread through feed.fanout over 3 feed
  worker processes (6 partitions): timeline inserts/s, as a ratio to ``redis-benchmark``'s
  pipelined ZADD against the same cache in the same run (``--cluster`` on the Cluster);
- relationship lookup: ``GET /v1/relationships/{member}`` under wrk (8 connections), on a generated graph
  loaded into the connections store (bench/connections_network.py's), p50/p99;
- invitation + accept: distinct pairs, each an invite then its accept over HTTP from a
  thread pool: pairs/s and the latency of each pair;

and once, the latency ``WAIT`` adds to a write (bench/cluster_wait.py's measurement).

Needs the default stack's infrastructure (``rapport up --infra-only``); the cluster stack's is
used when it runs (``rapport up --cluster --infra-only``, same environment), else started for
the run and stopped after it. Figures in ``bench/results/cluster.json``
(``cluster_quick.json`` with ``--quick``: 20,000 followers, a smaller graph, shorter runs).

    .venv/bin/python -m bench.cluster [--quick]
"""
from __future__ import annotations

import argparse
import random
import re
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from bench import cluster_wait, connections_network, feed_fanout
from bench.support import (
    BENCH_STORE_DB,
    bench_cluster_settings,
    bench_settings,
    drop_namespaces,
    gunicorn,
    gunicorn_config,
    percentiles,
    register,
    stop_on_sigterm,
    token_for,
    write_results,
    wrk,
)
from services.connections import store as connection_keys
from shared import store_client
from shared.settings import Settings, load_settings
from shared.stack import cluster as stack_cluster
from shared.stack import runner

FEED_WORKERS = 3
PARTITIONS = 6


def cluster_zadd(settings: Settings):
    """redis-benchmark's pipelined ZADD on the Cluster (``--cluster``: it fills ``{tag}`` with a
    tag of each primary's slots, so the keys spread over all of them and none is redirected)."""
    port = settings.cache_url.split("//", 1)[1].split(",")[0].rsplit(":", 1)[1]

    def zadd(requests_: int) -> float:
        out = subprocess.run(["redis-benchmark", "--cluster", "-p", port, "-P", "64", "-n", str(requests_),
                              "-r", "100000", "-q", "zadd", "bench-zadd:{tag}:__rand_int__", "__rand_int__",
                              "m:__rand_int__"], capture_output=True, text=True, check=True).stdout
        return float(re.findall(r"([\d.]+) requests per second", out)[-1])
    return zadd


def fanout(settings: Settings, quick: bool, zadd) -> dict:
    followers = 20_000 if quick else 100_000
    # Every batch past the first goes through feed.fanout, so the three workers share the audience.
    settings = settings.replace(fanout_threshold=10 * followers, fanout_inline_limit=settings.fanout_batch_size)
    assert settings.topic_partitions == PARTITIONS
    return feed_fanout.measure(settings, followers, FEED_WORKERS, runs=3,
                               zadd_requests=200_000 if quick else 1_000_000, zadd=zadd)


def relationships(settings: Settings, quick: bool) -> dict:
    """wrk on GET /v1/relationships/{member} over a generated graph in the connections store."""
    n = 2_000 if quick else 5_000
    rng = random.Random(7)
    adjacency = connections_network.generate(n, rng)
    store = store_client.connect(settings.store_url("connections"))
    started = time.perf_counter()
    entries = connections_network.load(store, adjacency)
    # Registered, as every member is: an unknown member would send each lookup to the profiles API.
    register(settings, [connections_network.member_name(i) for i in range(n)])
    loaded_s = time.perf_counter() - started
    typical = sorted(range(n), key=lambda i: len(adjacency[i]))[n // 2]
    caller = connections_network.member_name(typical)
    paths = [f"/v1/relationships/{connections_network.member_name(i)}" for i in rng.sample(range(n), 1000)
             if i != typical]
    try:
        with gunicorn("connections", settings) as base:
            wrk(f"{base}/healthz", seconds=2)  # warm up the workers and their connections
            # 8 connections: the latency of a lookup under load, not of a queue at saturation.
            figures = wrk(f"{base}/v1/relationships/x", token=token_for(settings, caller),
                          seconds=4 if quick else 10, connections=8, paths=paths)
    finally:
        forget_graph(store, adjacency)
    print(f"  relationships: {figures}")
    return {"members": n, "entries_loaded": entries, "load_s": round(loaded_s, 2), "wrk": figures,
            "gunicorn": gunicorn_config()}


def forget_graph(store, adjacency: list[list[int]]) -> None:
    """Delete what ``connections_network.load`` wrote: each member's keys and each pair's record."""
    name = connections_network.member_name
    pipe = store.pipeline(transaction=False)
    for u, others in enumerate(adjacency):
        pipe.delete(connection_keys.connections(name(u)))
        pipe.delete(connection_keys.projected(name(u)))
        for v in others:
            if name(u) < name(v):
                pipe.delete(connection_keys.relationship(name(u), name(v)))
        if len(pipe) >= 20_000:
            pipe.execute()
    pipe.execute()


def invite_accept(settings: Settings, quick: bool, threads: int = 16) -> dict:
    """Distinct pairs (no inviter near the weekly cap): each an invite, then its accept."""
    pairs = 300 if quick else 1_000
    run = uuid.uuid4().hex[:6]
    inviters = [f"inv{i}-{run}" for i in range(pairs)]
    invitees = [f"acc{i}-{run}" for i in range(pairs)]
    register(settings, inviters + invitees)
    tokens = {m: token_for(settings, m) for m in inviters + invitees}
    local = threading.local()
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    with gunicorn("connections", settings) as base:
        requests.get(f"{base}/healthz", timeout=5)

        def one(i: int) -> float:
            http = session()
            t0 = time.perf_counter()
            sent = http.post(f"{base}/v1/invitations", json={"invitee": invitees[i]},
                             headers={"Authorization": f"Bearer {tokens[inviters[i]]}"}, timeout=30)
            accepted = None
            if sent.status_code == 201:
                accepted = http.post(f"{base}/v1/invitations/{sent.json()['id']}/accept",
                                     headers={"Authorization": f"Bearer {tokens[invitees[i]]}"}, timeout=30)
            outcome = f"{sent.status_code}/{accepted.status_code if accepted is not None else '-'}"
            with lock:
                statuses[outcome] = statuses.get(outcome, 0) + 1
            return time.perf_counter() - t0

        for i in range(min(32, pairs)):  # warm: every gunicorn worker has its connections open
            one(i)
        measured = range(min(32, pairs), pairs)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            durations = list(pool.map(one, measured))
        elapsed = time.perf_counter() - started
    ok = statuses.get("201/200", 0) - min(32, pairs)
    figures = {"pairs": len(measured), "threads": threads, "seconds": round(elapsed, 2),
               "pairs_per_s": round(ok / elapsed, 1), "answers": statuses, "pair_latency": percentiles(durations)}
    print(f"  invite + accept: {figures}")
    return figures


def one_stack(name: str, settings: Settings, quick: bool, zadd) -> dict:
    print(f"== {name}: stores {settings.store_url('connections')}, cache {settings.cache_url}, "
          f"Kafka {settings.kafka_bootstrap}")
    return {"kafka": settings.kafka_bootstrap, "store": settings.store_url("connections"),
            "store_replicas_ack": settings.store_replicas_ack,
            "topic_replication_factor": settings.topic_replication_factor,
            "fanout": fanout(settings, quick, zadd), "relationships": relationships(settings, quick),
            "invite_accept": invite_accept(settings, quick)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 followers, a smaller graph, shorter runs")
    args = parser.parse_args()
    stop_on_sigterm()
    settings = load_settings()
    started_here = not stack_cluster.anything_started(settings)
    if started_here:  # as bench/cluster_wait.py: the cluster stack for this run only
        runner.up(settings, infra_only=True, cluster=True)
    try:
        run(settings, args.quick)
    finally:
        if started_here:
            drop_namespaces()  # while the stack it started still answers
            stack_cluster.down(settings)


def run(settings: Settings, quick: bool) -> None:
    no_metrics = {"worker_metrics_ports": {s: 0 for s in settings.worker_metrics_ports}}
    single = bench_settings(**no_metrics)
    on_cluster = bench_cluster_settings(**no_metrics)
    figures = {"quick": quick, "feed_workers": FEED_WORKERS, "partitions": PARTITIONS}
    figures["single_node"] = one_stack("single node", single, quick, None)
    figures["cluster"] = one_stack("cluster", on_cluster, quick, cluster_zadd(on_cluster))
    wait_client = store_client.connect(on_cluster.store_url("follows"))
    cluster_wait.measure(wait_client, 50, 0)  # warm the slot table
    writes = 500 if quick else 2_000
    no_wait, with_wait = cluster_wait.measure(wait_client, writes, 0), cluster_wait.measure(wait_client, writes, 1)
    single_client = store_client.connect(f"redis://127.0.0.1:{single.store_port}/{BENCH_STORE_DB['follows']}")
    single_write = cluster_wait.measure(single_client, writes, 0)
    figures["wait"] = {"what": cluster_wait.__doc__.split("\n")[0], "writes": writes, "single_node": single_write,
                       "cluster_no_wait": no_wait, "cluster_wait_1_replica": with_wait,
                       "wait_adds_p50_ms": round(with_wait["p50_ms"] - no_wait["p50_ms"], 3),
                       "wait_adds_p99_ms": round(with_wait["p99_ms"] - no_wait["p99_ms"], 3)}
    cluster_wait.forget(wait_client)
    cluster_wait.forget(single_client)
    s, c = figures["single_node"], figures["cluster"]
    figures["cluster_over_single"] = {
        "timeline_inserts_per_s": round(c["fanout"]["timeline_inserts_per_s"] / s["fanout"]["timeline_inserts_per_s"], 3),
        "relationship_p99": round(c["relationships"]["wrk"]["p99_ms"] / s["relationships"]["wrk"]["p99_ms"], 3),
        "invite_accept_pairs_per_s": round(c["invite_accept"]["pairs_per_s"] / s["invite_accept"]["pairs_per_s"], 3),
    }
    write_results("cluster_quick" if quick else "cluster", figures)


if __name__ == "__main__":
    main()
