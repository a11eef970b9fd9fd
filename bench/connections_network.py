"""Benchmark: the connections network at scale.

Generates a graph (about 150 connections per member on average, heavy-tailed: a few
members have 5,000+), loads it straight into the bench store through
``services.connections.store`` (pipelined, no HTTP), and measures:

- how loading time and memory (INFO used_memory delta) grow with the number of members;
- relationship lookups (degree up to 3 + mutual count: the pair's record and single-key lookups of
  the members' projected connections) and mutual-connection
  pages over random pairs, and over pairs of heavy members: p50/p99;
- through gunicorn, GET /v1/relationships/{member} throughput as a ratio to /healthz on the
  same server in the same run (wrk).

    .venv/bin/python -m bench.connections_network [--quick] [--keep]

The bench store's database is flushed before each size and, unless ``--keep``, at the end.
"""
from __future__ import annotations

import argparse
import gc
import itertools
import random
import time

import redis

from bench.support import bench_settings, gunicorn, gunicorn_config, percentiles, token_for, write_results, wrk
from services.connections import network
from services.connections import store as keys
from shared import store_client

AVERAGE_DEGREE = 150
PARETO_ALPHA = 2.1
MAX_WEIGHT = 8_000
BASE_MS = 1_700_000_000_000
SPAN_MS = 2 * 365 * 24 * 3600 * 1000
LOAD_BATCH = 50_000  # sorted-set entries per pipeline round trip


def member_name(i: int) -> str:
    return f"m{i:06d}"


def generate(n: int, rng: random.Random) -> list[list[int]]:
    """Adjacency lists of a Chung-Lu graph: endpoints drawn in proportion to Pareto weights,
    scaled to AVERAGE_DEGREE; self-loops dropped, duplicates collapse when loaded."""
    raw = [min(rng.paretovariate(PARETO_ALPHA), MAX_WEIGHT) for _ in range(n)]
    scale = AVERAGE_DEGREE / (sum(raw) / n)
    weights = [min(w * scale, MAX_WEIGHT) for w in raw]
    cum = list(itertools.accumulate(weights))
    population = list(range(n))
    adjacency: list[list[int]] = [[] for _ in range(n)]
    edges = n * AVERAGE_DEGREE // 2
    chunk = 500_000
    for start in range(0, edges, chunk):
        k = min(chunk, edges - start)
        us = rng.choices(population, cum_weights=cum, k=k)
        vs = rng.choices(population, cum_weights=cum, k=k)
        for u, v in zip(us, vs):
            if u != v:
                adjacency[u].append(v)
                adjacency[v].append(u)
    return adjacency


def connected_at(u: int, v: int) -> int:
    """The same time for both directions of an edge, without storing it."""
    a, b = (u, v) if u < v else (v, u)
    return BASE_MS + (a * 7_919 + b * 104_729) % SPAN_MS


def load(client: redis.Redis, adjacency: list[list[int]]) -> int:
    """Load every member's connections through store.load_connections; returns entries sent."""
    sent = 0
    pending = 0
    pipe = client.pipeline(transaction=False)
    for u, others in enumerate(adjacency):
        if not others:
            continue
        name = member_name(u)
        keys.load_connections(pipe, name, {member_name(v): connected_at(u, v) for v in others})
        pending += len(others)
        if pending >= LOAD_BATCH:
            pipe.execute()
            sent += pending
            pending = 0
    pipe.execute()
    return sent + pending


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def dataset_bytes(client: redis.Redis, n: int) -> int:
    """MEMORY USAGE summed over the graph's own keys (sampled): unaffected by other databases."""
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.memory_usage(keys.connections(member_name(i)))
    return sum(size or 0 for size in pipe.execute())


def build(client: redis.Redis, n: int, seed: int) -> tuple[dict, list[list[int]]]:
    client.flushdb(asynchronous=False)  # a lazy flush would still be freeing the last graph
    before = used_memory(client)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    gc.disable()  # millions of small lists: the collector would rescan them over and over
    try:
        adjacency = generate(n, rng)
    finally:
        gc.enable()
    t1 = time.perf_counter()
    entries = load(client, adjacency)
    t2 = time.perf_counter()
    degrees = sorted(client.zcard(keys.connections(member_name(i))) for i in range(n))
    delta = used_memory(client) - before
    own = dataset_bytes(client, n)
    figures = {
        "members": n, "generate_s": round(t1 - t0, 2), "load_s": round(t2 - t1, 2),
        "entries_sent": entries, "connections": sum(degrees) // 2,
        "degree_mean": round(sum(degrees) / n, 1), "degree_p50": degrees[n // 2],
        "degree_p99": degrees[int(n * 0.99)], "degree_max": degrees[-1],
        "members_5000_plus": sum(1 for d in degrees if d >= 5000),
        "used_memory_delta_mb": round(delta / 2**20, 1),
        "memory_usage_of_keys_mb": round(own / 2**20, 1),
        "bytes_per_connection": round(own / max(1, sum(degrees) // 2)),
    }
    print(f"  {n:>7} members: {figures}")
    return figures, adjacency


def timed(samples: int, rng: random.Random, pairs, call) -> dict:
    durations = []
    for _ in range(samples):
        a, b = pairs(rng)
        t0 = time.perf_counter()
        call(a, b)
        durations.append(time.perf_counter() - t0)
    return percentiles(durations)


def lookups(client: redis.Redis, adjacency: list[list[int]], samples: int, seed: int) -> dict:
    n = len(adjacency)
    rng = random.Random(seed)
    heavy = sorted(range(n), key=lambda i: len(adjacency[i]), reverse=True)[:max(10, n // 1000)]

    def random_pair(r):
        a, b = r.sample(range(n), 2)
        return member_name(a), member_name(b)

    def heavy_pair(r):
        a, b = r.sample(heavy, 2)
        return member_name(a), member_name(b)

    degrees: dict = {}

    def relationship(a, b):
        rel = network.relationship(client, a, b)
        degrees[rel.degree] = degrees.get(rel.degree, 0) + 1

    def mutual_page(a, b):
        network.mutual_connections(client, a, b, 20, None)

    figures = {
        "relationship_random_pairs": timed(samples, rng, random_pair, relationship),
        "degree_distribution_random_pairs": {str(k): v for k, v in sorted(degrees.items(), key=str)},
        "relationship_heavy_pairs": timed(samples // 4, rng, heavy_pair, relationship),
        "mutual_page_random_pairs": timed(samples, rng, random_pair, mutual_page),
        "mutual_page_heavy_pairs": timed(samples // 4, rng, heavy_pair, mutual_page),
    }
    for name, value in figures.items():
        print(f"  {name}: {value}")
    return figures


def through_http(settings, adjacency: list[list[int]], seconds: int, seed: int, workers: int) -> dict:
    rng = random.Random(seed)
    n = len(adjacency)
    # A caller of typical size asking about random members.
    typical = sorted(range(n), key=lambda i: len(adjacency[i]))[n // 2]
    caller = member_name(typical)
    paths = [f"/v1/relationships/{member_name(i)}" for i in rng.sample(range(n), 1000) if i != typical]
    with gunicorn("connections", settings, workers=workers) as base:
        wrk(f"{base}/healthz", seconds=2)  # warm up both workers
        health = wrk(f"{base}/healthz", seconds=seconds)
        relationships = wrk(f"{base}/v1/relationships/x", token=token_for(settings, caller), seconds=seconds,
                            paths=paths)
    ratio = round(relationships["rps"] / health["rps"], 3) if health["rps"] else None
    figures = {"gunicorn": gunicorn_config(workers), "healthz": health, "relationships": relationships,
               "ratio_to_healthz": ratio}
    print(f"  http: {figures}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller graphs and shorter runs")
    parser.add_argument("--keep", action="store_true", help="leave the largest graph in the bench store")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers (default: as the stack runs it, deploy/gunicorn.conf.py)")
    args = parser.parse_args()
    sizes = [2_000, 5_000, 10_000] if args.quick else [10_000, 30_000, 100_000]
    samples = 400 if args.quick else 2_000
    seconds = 4 if args.quick else 10

    settings = bench_settings()
    client = store_client.connect(settings.store_url("connections"))
    print(f"bench store {settings.store_url('connections')}; sizes {sizes}")
    growth = []
    adjacency: list[list[int]] = []
    for n in sizes:
        figures, adjacency = build(client, n, args.seed)
        growth.append(figures)
    latency = lookups(client, adjacency, samples, args.seed)
    http = through_http(settings, adjacency, seconds, args.seed, args.workers)
    write_results("connections_network_quick" if args.quick else "connections_network", {
        "quick": args.quick, "growth": growth, "lookups_on_largest": latency, "http_on_largest": http,
        "aims": {"relationship_p99_ms": 10, "ratio_to_healthz": 0.5},
    })
    if not args.keep:
        client.flushdb(asynchronous=False)


if __name__ == "__main__":
    main()
